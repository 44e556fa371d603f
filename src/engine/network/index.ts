// Containers on networks. The design:
// - Each started container on a bridge network gets a *persistent* network namespace, bind-mounted
//   at <root>/netns/<id> (CNI style), created and wired by the engine before the runtime runs: the
//   shim makes the namespace (unshare on one thread, bind mount, back); one `ip -batch` in tsrun's
//   namespace makes the veth, its host end on the bridge and eth0 put into the namespace; the shim
//   then sets lo and eth0 up, the address and the default route from inside (tsrun_netns_op, one
//   thread entering and leaving within the call). config.json names the file as linux.namespaces[network].path,
//   so the runtime only joins it (OCI's contract, nothing engine-specific in the runtime) and the
//   supervisor's restarts keep the same namespace and address.
// - The attachment (addresses, veths, ports) lives in <root>/networks/endpoints/<id>.json, for as
//   long as its owner process lives: the foreground `tsrun run`, or the container's supervisor.
//   `stop`, `rm` and a foreground run's end detach explicitly; an attachment whose owner died (a
//   crash, a detached container that exited for good) is swept by the next command that reconciles
//   (run/start/ps/port/network/rm): veth deleted, namespace unmounted, rules rewritten.
import fs = require('fs');
import path = require('path');
import { TsrunError } from '../../runtime/errors';
import { trace } from '../../runtime/trace';
import * as st from './store';
import { intToIp, parseCidr, macFor } from './addr';
import { ipBatch, ipBatchQuiet, netnsCreate, netnsOp, configureInside } from './exec';
import { applyPorts } from './firewall';
import { allocatePorts } from './ports';
import { hostsText, resolvText, writeInPlace, writeFiles } from './files';
import { locked, applyAll, rulesCurrent, portsGone, ensureBridge, resolveNetwork } from './networks';
import { allocate, vethName } from './ipam';
import { ensureResolver } from './resolver';
import { networkEvent } from '../events';
import type { NetConfig } from './config';

export { defaultNetworkMode, isBridgeLike, type NetConfig } from './config';
export { createNetwork, removeNetwork, listAll, pruneNetworks, pickSubnet, parseMtu, MTU_OPTION } from './networks';
export { connect, disconnect } from './connect';
export { serve as serveDns } from './dns';
export { st as store };

interface ContainerInfo { id: string; name: string; net?: NetConfig; hostname: string }

const MNT_DETACH = 2;

function containerDir(root: string, id: string): string {
  return path.join(root, 'containers', id);
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
        ...(n.mtu ? { mtu: n.mtu } : {}),
        ...(n.internal ? { internal: true } : {}),
      });
      if (n.dns) resolvers.push(n);
    }
    trace('net: addresses');
    const ports = allocatePorts(atts, net);
    trace('net: ports');
    const a: st.Attachment = {
      containerId: c.id, name: c.name, owner: { pid: process.pid, start: st.procStart(process.pid) ?? '' },
      netns: st.netnsPath(root, c.id), endpoints: eps, ports, ...(net.dns?.length ? { dns: net.dns } : {}),
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
    for (const e of eps) networkEvent(root, { id: e.networkId, name: e.networkName }, 'connect', c.id);
    return true;
  });
}

function readOr(file: string, fallback: string): string {
  try { return fs.readFileSync(file, 'utf8'); } catch { return fallback; }
}

/**
 * The namespace file; the veth pairs, made on the host with the container's end (eth0..) put into
 * the namespace and the host's end on its bridge (one `ip -batch`); then, inside, lo and eth0.. up
 * with their addresses and the default route (no process: see netnsOp).
 */
function plumb(a: st.Attachment): void {
  const what = `container ${a.name}: network namespace ${a.netns}`;
  fs.mkdirSync(path.dirname(a.netns), { recursive: true, mode: 0o700 });
  fs.writeFileSync(a.netns, '', { mode: 0o444 });
  netnsCreate(a.netns, what);
  trace('net: namespace created');
  const host: string[] = [];
  for (const e of a.endpoints) {
    const mtu = e.mtu ? ` mtu ${e.mtu}` : '';
    host.push(`link add ${e.veth}${mtu} master ${e.bridge} up type veth peer name ${e.ifname} address ${e.mac}${mtu} netns ${a.netns}`,
      `link set ${e.veth} type bridge_slave hairpin on`);
  }
  ipBatch(host, { what: `container ${a.name}: veth` });
  netnsOp(a.netns, 'up', 'lo', what);
  for (const e of a.endpoints) configureInside(a.netns, e, what);
  // the default route goes through the first network that leads out (an --internal one does not)
  const out = a.endpoints.find((e) => !e.internal);
  if (out) netnsOp(a.netns, 'route', out.gateway, what);
  trace('net: namespace plumbed');
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
  for (const e of a?.endpoints ?? []) networkEvent(root, { id: e.networkId, name: e.networkName }, 'disconnect', id);
  if (a?.ports.length) portsGone(root);
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

/** `rename`: a running container's DNS name (and /etc files' name, next start) follows it. */
export function renamed(root: string, id: string, from: string, to: string): void {
  if (!st.readAttachment(root, id)) return;
  locked(root, () => {
    const cur = st.readAttachment(root, id);
    if (!cur) return;
    const endpoints = cur.endpoints.map((e) => ({ ...e, aliases: e.aliases.map((x) => (x === from ? to : x)) }));
    st.saveAttachment(root, { ...cur, name: to, endpoints });
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
// container:NAME

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

/** The attachment of a running container (its owner alive), for `port`, `ps`, `inspect`. */
export function attachmentOf(root: string, id: string): st.Attachment | undefined {
  const a = st.readAttachment(root, id);
  return a && st.ownerAlive(a) ? a : undefined;
}

