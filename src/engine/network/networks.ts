// Networks: the default bridge (made on first use), user-defined ones, their bridges and rules.
import fs = require('fs');
import path = require('path');
import { TsrunError } from '../../runtime/errors';
import * as st from './store';
import { ipToInt, intToIp, parseCidr, formatCidr, contains, overlaps, hostRange, isIPv4, type Subnet } from './addr';
import { ipBatch, ipBatchQuiet, ipJSON } from './exec';
import { applyFirewall, applyPorts, chooseBackend } from './firewall';
import { releaseResolver } from './resolver';
import { networkEvent } from '../events';

/** The lock, and the iptables backend for this namespace chosen before any rule is written. */
export function locked<T>(root: string, fn: () => T): T {
  return st.withNetLock(root, () => {
    chooseBackend(st.networksDir(root));
    return fn();
  });
}

/**
 * All of tsrun's rules, then a marker naming the networks they were written for (per network
 * namespace): a start finds by a read whether the rules of every network are in place (a crash
 * between making a bridge and writing its rules is repaired by the next start).
 */
export function applyAll(root: string): void {
  const nets = st.listNetworks(root);
  applyFirewall(root, nets, st.listAttachments(root));
  try { fs.writeFileSync(rulesMarker(root), rulesKey(nets)); } catch { /* written next time */ }
}

function rulesMarker(root: string): string {
  let ino = '';
  try { ino = String(fs.statSync('/proc/self/ns/net').ino); } catch { /* one marker */ }
  return path.join(st.networksDir(root), `.rules-${ino}`);
}

function rulesKey(nets: st.NetworkRecord[]): string {
  return nets.map((n) => `${n.id} ${n.bridge} ${n.subnet} ${n.internal}`).sort().join('\n');
}

/**
 * Published ports went away: chain TSRUN rewritten alone, if this root's rules are the ones in this
 * namespace's chains (the marker); if not (refused as a second root, or never written), left to
 * the next applyAll, which writes everything from the state.
 */
export function portsGone(root: string): void {
  if (rulesCurrent(root)) applyPorts(st.listNetworks(root), st.listAttachments(root));
}

export function rulesCurrent(root: string): boolean {
  try { return fs.readFileSync(rulesMarker(root), 'utf8') === rulesKey(st.listNetworks(root)); } catch { return false; }
}

const CANDIDATES: string[] = [
  ...Array.from({ length: 15 }, (_, i) => `172.${17 + i}.0.0/16`),
  ...Array.from({ length: 16 }, (_, i) => `192.168.${i * 16}.0/20`),
];

/** Routes of this namespace that are not tsrun's bridges: a subnet overlapping one is taken. */
function hostRoutes(ours: Set<string>): Subnet[] {
  try {
    return ipJSON<{ dst: string; dev?: string }[]>(['-4', 'route', 'show', 'table', 'all'])
      .filter((r) => r.dst !== 'default' && !(r.dev && ours.has(r.dev)) && /^[\d.]+(\/\d+)?$/.test(r.dst))
      .map((r) => parseCidr(r.dst.includes('/') ? r.dst : r.dst + '/32'))
      .filter((s) => s.bits > 0 && !(s.bits === 8 && s.base === ipToInt('127.0.0.0')));
  } catch {
    return [];
  }
}

export function pickSubnet(root: string, want?: string): string {
  const nets = st.listNetworks(root);
  // tsrun0 is tsrun's by name: a route on it is the default bridge's, never someone else's
  const taken = [...nets.map((n) => parseCidr(n.subnet)), ...hostRoutes(new Set([st.DEFAULT_BRIDGE, ...nets.map((n) => n.bridge)]))];
  for (const c of want ? [want, ...CANDIDATES] : CANDIDATES) {
    const s = parseCidr(c);
    if (!taken.some((t) => overlaps(t, s))) return formatCidr(s);
  }
  throw new TsrunError('could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network', 125);
}

export const MTU_OPTION = 'com.docker.network.driver.mtu';

/** An MTU value as Docker checks it (68..65535 for IPv4 on Linux). */
export function parseMtu(v: string, what: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 68 || n > 65535) throw new TsrunError(`invalid MTU number: ${v} (${what}: 68 to 65535)`, 125);
  return n;
}

/**
 * The daemon-wide default MTU of new networks (dockerd's --mtu / daemon.json "mtu"): TSRUN_MTU, else
 * "mtu" in <root>/daemon.json; undefined: the kernel's (1500).
 */
export function defaultMtu(root: string): number | undefined {
  if (process.env.TSRUN_MTU) return parseMtu(process.env.TSRUN_MTU, 'TSRUN_MTU');
  let text: string;
  try { text = fs.readFileSync(path.join(root, 'daemon.json'), 'utf8'); } catch { return undefined; }
  let cfg: { mtu?: unknown };
  try { cfg = JSON.parse(text) as { mtu?: unknown }; } catch (e) { throw new TsrunError(`${path.join(root, 'daemon.json')}: ${(e as Error).message}`, 125); }
  if (cfg.mtu === undefined || cfg.mtu === 0) return undefined;
  return parseMtu(String(cfg.mtu), `"mtu" in ${path.join(root, 'daemon.json')}`);
}

/** The default `bridge` network's record, made on first use (subnet: TSRUN_BRIDGE_SUBNET or 172.17.0.0/16, else the first free). */
export function defaultNetworkLocked(root: string): st.NetworkRecord {
  const found = st.listNetworks(root).find((n) => n.isDefault);
  if (found) return found;
  // A tsrun0 that is already there (its root's state was deleted) keeps its address, as dockerd
  // adopts an existing docker0's; TSRUN_BRIDGE_SUBNET overrides.
  const left = process.env.TSRUN_BRIDGE_SUBNET ? undefined : bridgeAddress(st.DEFAULT_BRIDGE);
  const subnet = left ? formatCidr(parseCidr(`${left.local}/${left.prefixlen}`)) : pickSubnet(root, process.env.TSRUN_BRIDGE_SUBNET || '172.17.0.0/16');
  const s = parseCidr(subnet);
  const n: st.NetworkRecord = {
    id: st.newNetworkId(), name: 'bridge', driver: 'bridge', bridge: st.DEFAULT_BRIDGE, subnet,
    gateway: left?.local ?? intToIp(hostRange(s)[0]), created: new Date().toISOString(), internal: false, dns: false, labels: {}, isDefault: true,
  };
  const mtu = defaultMtu(root);
  if (mtu) n.mtu = mtu;
  st.saveNetwork(root, n);
  // its later uses take the bridge as they find it (ensureBridge's fast path): set it right now
  if (bridgeExists(n.bridge)) ensureBridge(n, true);
  return n;
}

function bridgeExists(dev: string): boolean {
  // /proc/sys/net shows the links of the reader's namespace: a stat instead of an `ip` process
  return fs.existsSync(`/proc/sys/net/ipv4/conf/${dev}`);
}

/** The first IPv4 address of an existing link, or undefined. */
function bridgeAddress(dev: string): { local: string; prefixlen: number } | undefined {
  if (!bridgeExists(dev)) return undefined;
  try {
    return ipJSON<{ addr_info?: { family: string; local: string; prefixlen: number }[] }[]>(['-4', 'addr', 'show', 'dev', dev])[0]?.addr_info?.find((a) => a.family === 'inet');
  } catch {
    return undefined;
  }
}

export function createNetwork(root: string, o: { name: string; subnet?: string; gateway?: string; internal?: boolean; labels?: Record<string, string>; mtu?: number }): st.NetworkRecord {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(o.name)) throw new TsrunError(`invalid network name "${o.name}"`, 125);
  if (['bridge', 'host', 'none'].includes(o.name)) throw new TsrunError(`network with name ${o.name} already exists`, 125);
  return locked(root, () => {
    if (st.listNetworks(root).some((n) => n.name === o.name)) throw new TsrunError(`network with name ${o.name} already exists`, 125);
    let subnet: string;
    if (o.subnet) {
      subnet = formatCidr(parseCidr(o.subnet));
      const s = parseCidr(subnet);
      const clash = st.listNetworks(root).find((n) => overlaps(parseCidr(n.subnet), s));
      if (clash) throw new TsrunError(`invalid pool request: Pool overlaps with other one on this address space (network ${clash.name}, ${clash.subnet})`, 125);
    } else {
      if (o.gateway) throw new TsrunError('invalid config: --gateway needs --subnet', 125);
      defaultNetworkLocked(root); // the default bridge keeps its subnet (172.17/16) even before its first use
      subnet = pickSubnet(root);
    }
    const s = parseCidr(subnet);
    if (o.gateway && (!isIPv4(o.gateway) || !contains(s, ipToInt(o.gateway)))) throw new TsrunError(`no matching subnet for gateway ${o.gateway}`, 125);
    const id = st.newNetworkId();
    const n: st.NetworkRecord = {
      id, name: o.name, driver: 'bridge', bridge: `tsbr-${id.slice(0, 10)}`, subnet, gateway: o.gateway ?? intToIp(hostRange(s)[0]),
      created: new Date().toISOString(), internal: !!o.internal, dns: true, labels: o.labels ?? {},
    };
    const mtu = o.mtu ?? defaultMtu(root);
    if (mtu) n.mtu = mtu;
    st.saveNetwork(root, n);
    try {
      ensureBridge(n);
      applyAll(root);
    } catch (e) {
      st.deleteNetworkRecord(root, n.id);
      ipBatchQuiet([`link del ${n.bridge}`]);
      throw e;
    }
    networkEvent(root, n, 'create');
    return n;
  });
}

export function removeNetwork(root: string, key: string): st.NetworkRecord {
  return locked(root, () => {
    const n = st.findNetwork(root, key);
    if (!n) throw new TsrunError(`network ${key} not found`, 1);
    if (n.isDefault) throw new TsrunError(`bridge is a pre-defined network and cannot be removed`, 1);
    const users = st.listAttachments(root).filter((a) => st.ownerAlive(a) && a.endpoints.some((e) => e.networkId === n.id));
    if (users.length) throw new TsrunError(`error while removing network: network ${n.name} id ${n.id} has active endpoints (${users.map((u) => u.name).join(', ')})`, 1);
    st.deleteNetworkRecord(root, n.id);
    networkEvent(root, n, 'destroy');
    if (n.dns) releaseResolver(root);
    ipBatchQuiet([`link del ${n.bridge}`]);
    applyAll(root);
    return n;
  });
}

/**
 * The bridge, its address, up; forwarding on; route_localnet (localhost:PORT → container). Returns
 * true if it made the bridge. An existing link is taken as it is unless `check`.
 */
export function ensureBridge(n: st.NetworkRecord, check = false): boolean {
  if (!check && bridgeExists(n.bridge)) {
    sysctl('/proc/sys/net/ipv4/ip_forward', '1');
    return false;
  }
  let have: { addr_info?: { family: string; local: string; prefixlen: number }[]; operstate?: string; flags?: string[] }[] = [];
  try { have = ipJSON(['addr', 'show', 'dev', n.bridge]); } catch { /* missing */ }
  const s = parseCidr(n.subnet);
  const lines: string[] = [];
  if (!have.length) lines.push(`link add ${n.bridge}${n.mtu ? ` mtu ${n.mtu}` : ''} type bridge`);
  if (!have[0]?.addr_info?.some((a) => a.family === 'inet' && a.local === n.gateway)) lines.push(`addr add ${n.gateway}/${s.bits} dev ${n.bridge}`);
  if (!have[0]?.flags?.includes('UP')) lines.push(`link set ${n.bridge} up`);
  ipBatch(lines, { what: `network ${n.name}: bridge ${n.bridge}` });
  sysctl('/proc/sys/net/ipv4/ip_forward', '1');
  sysctl(`/proc/sys/net/ipv4/conf/${n.bridge}/route_localnet`, '1');
  return !have.length;
}

function sysctl(file: string, v: string): void {
  try {
    if (fs.readFileSync(file, 'utf8').trim() !== v) fs.writeFileSync(file, v);
  } catch (e) {
    throw new TsrunError(`sysctl ${file.slice('/proc/sys/'.length).replace(/\//g, '.')}=${v}: ${(e as Error).message}`, 125);
  }
}

export function resolveNetwork(root: string, key: string): st.NetworkRecord {
  if (key === 'bridge') return defaultNetworkLocked(root);
  const n = st.findNetwork(root, key);
  if (!n) throw new TsrunError(`network ${key} not found`, 125);
  return n;
}

/** Every network, the default bridge's record made if need be (`network ls` shows it always). */
export function listAll(root: string): st.NetworkRecord[] {
  const nets = st.listNetworks(root);
  if (!nets.some((n) => n.isDefault)) nets.unshift(locked(root, () => defaultNetworkLocked(root)));
  return nets;
}

/** `network prune`: user-defined networks no running container is on. */
/** The user networks no container is attached to, that `keep` allows (the caller leaves out the ones containers name). */
export function pruneNetworks(root: string, keep: (n: st.NetworkRecord) => boolean = () => true): string[] {
  const out: string[] = [];
  for (const n of st.listNetworks(root)) {
    if (n.isDefault || !keep(n)) continue;
    if (st.listAttachments(root).some((a) => a.endpoints.some((e) => e.networkId === n.id))) continue;
    try { removeNetwork(root, n.id); out.push(n.name); } catch { /* in use meanwhile */ }
  }
  return out;
}

