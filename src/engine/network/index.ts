// Containers on networks. The design:
// - Each started container on a bridge network gets a *persistent* network namespace, bind-mounted
//   at <root>/netns/<id> (CNI style), created and wired by the engine before the runtime runs:
//   `unshare --net=FILE ip -batch` makes lo, eth0 (one end of a veth, the other end created straight
//   in tsrun's namespace), the address and the default route; one `ip -batch` in tsrun's namespace
//   puts the host end on the bridge. config.json names the file as linux.namespaces[network].path,
//   so the runtime only joins it (OCI's contract, nothing engine-specific in the runtime) and the
//   supervisor's restarts keep the same namespace and address.
// - The attachment (addresses, veths, ports) lives in <root>/networks/endpoints/<id>.json, for as
//   long as its owner process lives: the foreground `tsrun run`, or the container's supervisor.
//   `stop`, `rm` and a foreground run's end detach explicitly; an attachment whose owner died (a
//   crash, a detached container that exited for good) is swept by the next command that reconciles
//   (run/start/ps/port/network/rm): veth deleted, namespace unmounted, rules rewritten.
import fs = require('fs');
import path = require('path');
import { spawn } from 'child_process';
import { TsrunError } from '../../runtime/errors';
import { trace } from '../../runtime/trace';
import * as st from './store';
import { ipToInt, intToIp, parseCidr, formatCidr, contains, overlaps, hostRange, macFor, isIPv4, type Subnet } from './addr';
import { ipBatch, ipBatchQuiet, tool, ipJSON } from './exec';
import { applyFirewall, applyPorts, chooseBackend } from './firewall';
import { listeningPorts, ephemeralRange } from './ports';
import { hostsText, resolvText, writeInPlace } from './files';
import { isBridgeLike, type NetConfig } from './config';

export { defaultNetworkMode, isBridgeLike, type NetConfig } from './config';

/**
 * All of tsrun's rules, then a marker naming the networks they were written for (per network
 * namespace): a start finds by a read whether the rules of every network are in place (a crash
 * between making a bridge and writing its rules is repaired by the next start).
 */
function applyAll(root: string): void {
  const nets = st.listNetworks(root);
  applyFirewall(nets, st.listAttachments(root));
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

function rulesCurrent(root: string): boolean {
  try { return fs.readFileSync(rulesMarker(root), 'utf8') === rulesKey(st.listNetworks(root)); } catch { return false; }
}

/** The lock, and the iptables backend for this namespace chosen before any rule is written. */
function locked<T>(root: string, fn: () => T): T {
  return st.withNetLock(root, () => {
    chooseBackend(st.networksDir(root));
    return fn();
  });
}

interface ContainerInfo { id: string; name: string; net?: NetConfig; hostname: string }

const MNT_DETACH = 2;

function containerDir(root: string, id: string): string {
  return path.join(root, 'containers', id);
}

// ---------------------------------------------------------------------------------------------
// networks

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
  const taken = [...nets.map((n) => parseCidr(n.subnet)), ...hostRoutes(new Set(nets.map((n) => n.bridge)))];
  for (const c of want ? [want, ...CANDIDATES] : CANDIDATES) {
    const s = parseCidr(c);
    if (!taken.some((t) => overlaps(t, s))) return formatCidr(s);
  }
  throw new TsrunError('could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network', 125);
}

/** The default `bridge` network's record, made on first use (subnet: TSRUN_BRIDGE_SUBNET or 172.17.0.0/16, else the first free). */
function defaultNetworkLocked(root: string): st.NetworkRecord {
  const found = st.listNetworks(root).find((n) => n.isDefault);
  if (found) return found;
  const subnet = pickSubnet(root, process.env.TSRUN_BRIDGE_SUBNET || '172.17.0.0/16');
  const s = parseCidr(subnet);
  const n: st.NetworkRecord = {
    id: st.newNetworkId(), name: 'bridge', driver: 'bridge', bridge: st.DEFAULT_BRIDGE, subnet,
    gateway: intToIp(hostRange(s)[0]), created: new Date().toISOString(), internal: false, dns: false, labels: {}, isDefault: true,
  };
  st.saveNetwork(root, n);
  return n;
}

export function createNetwork(root: string, o: { name: string; subnet?: string; gateway?: string; internal?: boolean; labels?: Record<string, string> }): st.NetworkRecord {
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
    st.saveNetwork(root, n);
    try {
      ensureBridge(n);
      applyAll(root);
    } catch (e) {
      st.deleteNetworkRecord(root, n.id);
      ipBatchQuiet([`link del ${n.bridge}`]);
      throw e;
    }
    return n;
  });
}

export function removeNetwork(root: string, key: string): st.NetworkRecord {
  return locked(root, () => {
    reconcileLocked(root);
    const n = st.findNetwork(root, key);
    if (!n) throw new TsrunError(`network ${key} not found`, 1);
    if (n.isDefault) throw new TsrunError(`bridge is a pre-defined network and cannot be removed`, 1);
    const users = st.listAttachments(root).filter((a) => a.endpoints.some((e) => e.networkId === n.id));
    if (users.length) throw new TsrunError(`error while removing network: network ${n.name} id ${n.id} has active endpoints (${users.map((u) => u.name).join(', ')})`, 1);
    stopResolver(root, n);
    st.deleteNetworkRecord(root, n.id);
    ipBatchQuiet([`link del ${n.bridge}`]);
    applyAll(root);
    return n;
  });
}

/** The bridge, its address, up; forwarding on; route_localnet (localhost:PORT → container). Returns true if it made the bridge. */
function ensureBridge(n: st.NetworkRecord): boolean {
  // /proc/sys/net shows the links of the reader's namespace: a stat instead of an `ip` process
  if (fs.existsSync(`/proc/sys/net/ipv4/conf/${n.bridge}`)) {
    sysctl('/proc/sys/net/ipv4/ip_forward', '1');
    return false;
  }
  let have: { addr_info?: { family: string; local: string; prefixlen: number }[]; operstate?: string; flags?: string[] }[] = [];
  try { have = ipJSON(['addr', 'show', 'dev', n.bridge]); } catch { /* missing */ }
  const s = parseCidr(n.subnet);
  const lines: string[] = [];
  if (!have.length) lines.push(`link add ${n.bridge} type bridge`);
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

// ---------------------------------------------------------------------------------------------
// attach / detach

function usedAddresses(atts: st.Attachment[], n: st.NetworkRecord): Set<number> {
  const used = new Set<number>([ipToInt(n.gateway)]);
  for (const a of atts) for (const e of a.endpoints) if (e.networkId === n.id) used.add(ipToInt(e.ip));
  return used;
}

function allocate(root: string, atts: st.Attachment[], n: st.NetworkRecord, want?: string): number {
  const s = parseCidr(n.subnet);
  const used = usedAddresses(atts, n);
  if (want) {
    const ip = ipToInt(want);
    if (!contains(s, ip)) throw new TsrunError(`invalid address ${want}: it does not belong to any of this network's subnets (${n.subnet})`, 125);
    if (used.has(ip)) throw new TsrunError(`Address already in use: ${want} on network ${n.name}`, 125);
    return ip;
  }
  // round robin from the last address given out: an address just released (whose veth the kernel
  // may still be deleting) is the last to be handed out again
  const [lo, hi] = hostRange(s);
  let last = lo - 1;
  const file = path.join(st.networksDir(root), `${n.id}.last`);
  try { last = ipToInt(fs.readFileSync(file, 'utf8').trim()); } catch { /* first */ }
  if (last < lo - 1 || last > hi) last = lo - 1;
  for (let k = 1; k <= hi - lo + 1; k++) {
    const ip = lo + ((last - lo + k) % (hi - lo + 1));
    if (!used.has(ip)) { fs.writeFileSync(file, intToIp(ip)); return ip; }
  }
  throw new TsrunError(`no available IPv4 addresses on network ${n.name} (${n.subnet})`, 125);
}

function resolveNetwork(root: string, key: string): st.NetworkRecord {
  if (key === 'bridge') return defaultNetworkLocked(root);
  const n = st.findNetwork(root, key);
  if (!n) throw new TsrunError(`network ${key} not found`, 125);
  return n;
}

function vethName(): string {
  return 'veth' + require('crypto').randomBytes(4).toString('hex').slice(0, 7); // eslint-disable-line @typescript-eslint/no-require-imports
}

/**
 * Before the runtime starts the container: its namespace, addresses, ports, rules and /etc files.
 * Returns whether it attached (false: no namespace of its own, or attached already).
 */
export function attach(root: string, c: ContainerInfo): boolean {
  const net = c.net ?? { mode: 'none' };
  const dir = containerDir(root, c.id);
  if (net.mode === 'host') {
    writeInPlace(path.join(dir, 'hosts'), readOr('/etc/hosts', hostsText({ hostname: c.hostname })));
    writeInPlace(path.join(dir, 'resolv.conf'), readOr('/etc/resolv.conf', resolvText({})));
    writeInPlace(path.join(dir, 'hostname'), c.hostname + '\n');
    return false;
  }
  if (net.mode === 'none') return false;
  if (net.mode.startsWith('container:')) { joinContainer(root, c, net.mode.slice('container:'.length)); return false; }
  const resolvers: st.NetworkRecord[] = [];
  return locked(root, () => {
    trace('net: locked');
    reconcileLocked(root);
    // a live attachment is a running container's (`start` of a running one): left alone
    if (st.readAttachment(root, c.id)) return false;
    const atts = st.listAttachments(root);
    const wanted = [{ network: net.mode, aliases: net.aliases ?? [], ip: net.ip }, ...(net.extra ?? []).map((e) => ({ network: e.network, aliases: e.aliases ?? [], ip: e.ip }))];
    const eps: st.Endpoint[] = [];
    let rulesChanged = false;
    for (const [i, w] of wanted.entries()) {
      const n = resolveNetwork(root, w.network);
      if (eps.some((e) => e.networkId === n.id)) continue;
      if (ensureBridge(n)) rulesChanged = true;
      const ip = allocate(root, [...atts, { endpoints: eps } as st.Attachment], n, w.ip);
      eps.push({
        networkId: n.id, networkName: n.name, bridge: n.bridge, ip: intToIp(ip), prefix: parseCidr(n.subnet).bits, gateway: n.gateway,
        mac: i === 0 && net.mac ? net.mac : macFor(ip), veth: vethName(), ifname: `eth${eps.length}`,
        aliases: n.dns ? [...new Set([c.name, c.id.slice(0, 12), ...w.aliases])] : [],
      });
      if (n.dns) resolvers.push(n);
    }
    trace('net: addresses');
    const ports = allocatePorts(atts, net);
    trace('net: ports');
    const a: st.Attachment = {
      containerId: c.id, name: c.name, owner: { pid: process.pid, start: st.procStart(process.pid) ?? '' },
      netns: st.netnsPath(root, c.id), endpoints: eps, ports,
    };
    st.saveAttachment(root, a);
    try {
      plumb(a);
      if (rulesChanged || !rulesCurrent(root)) applyAll(root);
      else if (ports.length) applyPorts(st.listNetworks(root), st.listAttachments(root));
      for (const n of resolvers) ensureResolver(root, n);
    } catch (e) {
      detachLocked(root, c.id, false);
      throw e;
    }
    writeFiles(root, c, net, a);
    return true;
  });
}

function readOr(file: string, fallback: string): string {
  try { return fs.readFileSync(file, 'utf8'); } catch { return fallback; }
}

function allocatePorts(atts: st.Attachment[], net: NetConfig): st.PortBinding[] {
  const taken = new Set<string>();
  for (const a of atts) for (const p of a.ports) taken.add(`${p.proto}:${p.hostPort}`);
  // what listens in this namespace: a DNAT rule would silently shadow a host service on that port
  let cache: ReturnType<typeof listeningPorts> | undefined;
  const listen = { get tcp() { return (cache ??= listeningPorts()).tcp; }, get udp() { return (cache ??= listeningPorts()).udp; } };
  const out: st.PortBinding[] = [];
  const [lo, hi] = ephemeralRange();
  for (const r of net.ports ?? []) {
    let port = r.hostPort;
    if (port === 0) {
      for (let p = lo; p <= hi; p++) if (!taken.has(`${r.proto}:${p}`) && !listen[r.proto].has(p)) { port = p; break; }
      if (port === 0) throw new TsrunError(`no free host port for ${r.containerPort}/${r.proto}`, 125);
    } else if (taken.has(`${r.proto}:${port}`) || listen[r.proto].has(port)) {
      throw new TsrunError(`driver failed programming external connectivity: Bind for ${r.hostIp}:${port} failed: port is already allocated`, 125);
    }
    taken.add(`${r.proto}:${port}`);
    out.push({ ...r, hostPort: port });
  }
  return out;
}

/** The namespace file, eth0.. with addresses and the default route, and the host ends on their bridges. */
function plumb(a: st.Attachment): void {
  fs.mkdirSync(path.dirname(a.netns), { recursive: true, mode: 0o700 });
  fs.writeFileSync(a.netns, '', { mode: 0o444 });
  const inside = ['link set lo up'];
  const host: string[] = [];
  for (const e of a.endpoints) {
    inside.push(`link add ${e.ifname} address ${e.mac} type veth peer name ${e.veth} netns ${process.pid}`,
      `addr add ${e.ip}/${e.prefix} dev ${e.ifname}`, `link set ${e.ifname} up`);
    host.push(`link set ${e.veth} master ${e.bridge} up`, `link set ${e.veth} type bridge_slave hairpin on`);
  }
  if (a.endpoints[0]) inside.push(`route add default via ${a.endpoints[0].gateway}`);
  ipBatch(inside, { create: a.netns, what: `container ${a.name}: network namespace` });
  ipBatch(host, { what: `container ${a.name}: veth` });
}

/**
 * `stopped`: the container has exited, so unmounting its namespace file frees the namespace and the
 * kernel deletes the veth pair with it (asynchronously: an explicit `ip link del` costs ~15 ms of
 * synchronize_net on the stop path). Otherwise (an owner died, the container may live on) the veths
 * are deleted first, so the container loses the addresses that are given back.
 */
function detachLocked(root: string, id: string, stopped: boolean): void {
  const a = st.readAttachment(root, id);
  if (a && !stopped) ipBatchQuiet(a.endpoints.map((e) => `link del ${e.veth}`));
  unmountNetns(st.netnsPath(root, id));
  trace('net: namespace unmounted');
  st.deleteAttachment(root, id);
  if (a?.ports.length) applyPorts(st.listNetworks(root), st.listAttachments(root), true);
}

function unmountNetns(file: string): void {
  if (!fs.existsSync(file)) return;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { umount2 } = require('../../kernel/fsops') as typeof import('../../kernel/fsops');
  umount2(file, MNT_DETACH, ['EINVAL', 'ENOENT']);
  fs.rmSync(file, { force: true });
}

/** After the container stopped for good (stop, rm, the end of a foreground run). */
export function detach(root: string, id: string): void {
  if (!st.readAttachment(root, id) && !fs.existsSync(st.netnsPath(root, id))) return;
  locked(root, () => detachLocked(root, id, true));
}

/** The owner (a supervisor) gives the attachment up; anyone else's attachment is left alone. */
export function release(root: string, id: string, owner: number): void {
  const a = st.readAttachment(root, id);
  if (!a || (a.owner.pid !== owner && st.ownerAlive(a))) return;
  locked(root, () => {
    const cur = st.readAttachment(root, id);
    if (cur && (cur.owner.pid === owner || !st.ownerAlive(cur))) detachLocked(root, id, true);
  });
}

/** The attachment now lives as long as this process (the supervisor of a detached container). */
export function handOver(root: string, id: string, pid: number): void {
  const a = st.readAttachment(root, id);
  const start = st.procStart(pid);
  if (!a || !start) return;
  locked(root, () => {
    const cur = st.readAttachment(root, id);
    if (cur) st.saveAttachment(root, { ...cur, owner: { pid, start } });
  });
}

function reconcileLocked(root: string): void {
  const atts = st.listAttachments(root);
  const live = new Set<string>();
  for (const a of atts) {
    if (st.ownerAlive(a)) live.add(a.containerId);
    else detachLocked(root, a.containerId, false);
  }
  let files: string[] = [];
  try { files = fs.readdirSync(st.netnsDir(root)); } catch { /* none */ }
  for (const f of files) if (!live.has(f)) unmountNetns(path.join(st.netnsDir(root), f));
}

/** Sweep attachments whose owner died (cheap when there are none). */
export function reconcile(root: string): void {
  const stale = st.listAttachments(root).some((a) => !st.ownerAlive(a));
  if (stale) locked(root, () => reconcileLocked(root));
}

// ---------------------------------------------------------------------------------------------
// container:NAME, /etc files

function joinContainer(root: string, c: ContainerInfo, target: string): void {
  const a = st.readAttachment(root, target);
  let nsPath: string | undefined;
  if (a && st.ownerAlive(a)) nsPath = a.netns;
  else {
    let pid = 0;
    try { pid = JSON.parse(fs.readFileSync(path.join(root, 'oci', target, 'state.json'), 'utf8')).pid ?? 0; } catch { /* not running */ }
    if (!pid || !fs.existsSync(`/proc/${pid}`)) throw new TsrunError(`cannot join network namespace of a non running container: ${target.slice(0, 12)}`, 125);
    nsPath = `/proc/${pid}/ns/net`;
  }
  const cfgFile = path.join(containerDir(root, c.id), 'config.json');
  const spec = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as { linux?: { namespaces?: { type: string; path?: string }[] } };
  for (const ns of spec.linux?.namespaces ?? []) if (ns.type === 'network') ns.path = nsPath;
  fs.writeFileSync(cfgFile, JSON.stringify(spec, null, 2));
}

function writeFiles(root: string, c: ContainerInfo, net: NetConfig, a: st.Attachment): void {
  const dir = containerDir(root, c.id);
  const ep = a.endpoints[0];
  const links = (net.links ?? []).flatMap((l) => {
    const t = st.listAttachments(root).find((x) => x.containerId === l.name || x.name === l.name);
    return t?.endpoints[0] ? [{ ip: t.endpoints[0].ip, alias: l.alias, name: t.name }] : [];
  });
  writeInPlace(path.join(dir, 'hosts'), hostsText({ ip: ep?.ip, hostname: c.hostname, addHosts: net.addHosts, links }));
  writeInPlace(path.join(dir, 'hostname'), c.hostname + '\n');
  const userNet = a.endpoints.find((e) => st.listNetworks(root).find((n) => n.id === e.networkId)?.dns);
  writeInPlace(path.join(dir, 'resolv.conf'), userNet
    ? resolvText({ nameservers: [userNet.gateway, ...(net.dns ?? [])], search: net.dnsSearch, options: net.dnsOptions })
    : resolvText({ dns: net.dns, search: net.dnsSearch, options: net.dnsOptions }));
}

// ---------------------------------------------------------------------------------------------
// the embedded DNS: one resolver process per user network, on its gateway address, port 53

function resolverPidFile(root: string, n: st.NetworkRecord): string {
  return path.join(st.networksDir(root), `${n.id}.dns`);
}

function resolverAlive(root: string, n: st.NetworkRecord): boolean {
  try {
    const [pid, start] = fs.readFileSync(resolverPidFile(root, n), 'utf8').trim().split(' ');
    return st.procStart(Number(pid)) === start;
  } catch {
    return false;
  }
}

function ensureResolver(root: string, n: st.NetworkRecord): void {
  if (resolverAlive(root, n)) return;
  fs.rmSync(resolverPidFile(root, n), { force: true });
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { repoDir } = require('../../kernel/native') as typeof import('../../kernel/native');
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const child = spawn(process.execPath, [path.join(repoDir(), 'bin', 'tsrun'), '--root', path.resolve(root), 'network', 'dns-serve', n.id],
    { detached: true, stdio: 'ignore', env });
  child.unref();
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 300 && !resolverAlive(root, n); i++) Atomics.wait(sleeper, 0, 0, 10);
  if (!resolverAlive(root, n)) throw new TsrunError(`network ${n.name}: the DNS resolver did not start on ${n.gateway}:53`, 125);
}

function stopResolver(root: string, n: st.NetworkRecord): void {
  try {
    const [pid, start] = fs.readFileSync(resolverPidFile(root, n), 'utf8').trim().split(' ');
    if (st.procStart(Number(pid)) === start) process.kill(Number(pid), 'SIGTERM');
  } catch { /* not running */ }
  fs.rmSync(resolverPidFile(root, n), { force: true });
}

export { st as store };
export { tool };

// ---------------------------------------------------------------------------------------------
// connect / disconnect

/** `network connect`: recorded for the next starts; a running container gets ethN at once. */
export function connect(root: string, c: { id: string; name: string; net?: NetConfig; hostname: string }, key: string, o: { aliases?: string[]; ip?: string }): NetConfig {
  const net: NetConfig = c.net ?? { mode: 'none' };
  if (!isBridgeLike(net.mode)) throw new TsrunError('container sharing network namespace with another container or host cannot be connected to any other network', 1);
  return locked(root, () => {
    const n = resolveNetwork(root, key);
    const same = (k: string) => k === n.name || k === n.id || (k === 'bridge' && n.isDefault);
    if (same(net.mode) || (net.extra ?? []).some((e) => same(e.network))) throw new TsrunError(`endpoint with name ${c.name} already exists in network ${n.name}`, 1);
    const next: NetConfig = { ...net, extra: [...(net.extra ?? []), { network: n.name, ...(o.aliases?.length ? { aliases: o.aliases } : {}), ...(o.ip ? { ip: o.ip } : {}) }] };
    const a = st.readAttachment(root, c.id);
    if (a && st.ownerAlive(a)) {
      const bridgeMade = ensureBridge(n);
      const ip = allocate(root, st.listAttachments(root), n, o.ip);
      const used = new Set(a.endpoints.map((e) => e.ifname));
      let k = 0;
      while (used.has(`eth${k}`)) k++;
      const e: st.Endpoint = {
        networkId: n.id, networkName: n.name, bridge: n.bridge, ip: intToIp(ip), prefix: parseCidr(n.subnet).bits, gateway: n.gateway,
        mac: macFor(ip), veth: vethName(), ifname: `eth${k}`, aliases: n.dns ? [...new Set([c.name, c.id.slice(0, 12), ...(o.aliases ?? [])])] : [],
      };
      ipBatch([`link add ${e.veth} master ${n.bridge} up type veth peer name ${e.ifname} address ${e.mac} netns ${a.netns}`], { what: `connect ${c.name} to ${n.name}` });
      try {
        ipBatch([`addr add ${e.ip}/${e.prefix} dev ${e.ifname}`, `link set ${e.ifname} up`], { enter: a.netns, what: `connect ${c.name} to ${n.name}` });
      } catch (err) {
        ipBatchQuiet([`link del ${e.veth}`]);
        throw err;
      }
      const updated = { ...a, endpoints: [...a.endpoints, e] };
      st.saveAttachment(root, updated);
      if (bridgeMade || !rulesCurrent(root)) applyAll(root);
      if (n.dns) ensureResolver(root, n);
      writeFiles(root, c, next, updated);
    }
    return next;
  });
}

export function disconnect(root: string, c: { id: string; name: string; net?: NetConfig; hostname: string }, key: string): NetConfig {
  const net: NetConfig = c.net ?? { mode: 'none' };
  return locked(root, () => {
    const n = st.findNetwork(root, key) ?? (key === 'bridge' ? defaultNetworkLocked(root) : undefined);
    if (!n) throw new TsrunError(`network ${key} not found`, 1);
    const same = (k: string) => k === n.name || k === n.id || (k === 'bridge' && !!n.isDefault);
    const extra = (net.extra ?? []).filter((e) => !same(e.network));
    const primary = same(net.mode);
    if (!primary && extra.length === (net.extra ?? []).length) throw new TsrunError(`container ${c.id.slice(0, 12)} is not connected to network ${n.name}`, 1);
    let next: NetConfig;
    if (primary) {
      // the next network becomes the primary one; without any, the container has only lo
      const [first, ...rest] = extra;
      next = first ? { ...net, mode: first.network, aliases: first.aliases, ip: first.ip, extra: rest } : { ...net, mode: 'none', extra: [], ports: undefined };
    } else next = { ...net, extra };
    const a = st.readAttachment(root, c.id);
    const e = a?.endpoints.find((x) => x.networkId === n.id);
    if (a && e) {
      ipBatchQuiet([`link del ${e.veth}`]);
      const updated = { ...a, endpoints: a.endpoints.filter((x) => x !== e) };
      st.saveAttachment(root, updated);
      if (a.ports.length) applyPorts(st.listNetworks(root), st.listAttachments(root));
      writeFiles(root, c, next, updated);
    }
    return next;
  });
}

// ---------------------------------------------------------------------------------------------
// what `network ls/inspect`, `port`, `ps` and `inspect` show

export function listAll(root: string): st.NetworkRecord[] {
  const nets = st.listNetworks(root);
  if (!nets.some((n) => n.isDefault)) nets.unshift(locked(root, () => defaultNetworkLocked(root)));
  return nets;
}

export function attachmentOf(root: string, id: string): st.Attachment | undefined {
  const a = st.readAttachment(root, id);
  return a && st.ownerAlive(a) ? a : undefined;
}

export function pruneNetworks(root: string): string[] {
  reconcile(root);
  const out: string[] = [];
  for (const n of st.listNetworks(root)) {
    if (n.isDefault) continue;
    if (st.listAttachments(root).some((a) => a.endpoints.some((e) => e.networkId === n.id))) continue;
    try { removeNetwork(root, n.id); out.push(n.name); } catch { /* in use meanwhile */ }
  }
  return out;
}

export { serve as serveDns } from './dns';
