// Networks and attachments on disk, under <root>/networks:
//   <id>.json              a network (the default `bridge` is one too, made on first use)
//   endpoints/<cid>.json   a started container's attachment: its netns file, addresses, veths, ports
//   .lock                  flock'ed around every change (IPAM, ports, firewall): 50 concurrent `run`s
//                          take addresses one after another
// The addresses in use are the ones in endpoints/: releasing an address is deleting its attachment,
// so a crash cannot leave the IPAM and the attachments disagreeing.
import fs = require('fs');
import path = require('path');
import crypto = require('crypto');
import { TsrunError } from '../../runtime/errors';
import { writeAtomic } from '../../runtime/state';
import { withFileLock } from '../../kernel/fsops';

export interface NetworkRecord {
  id: string;            // 64 hex
  name: string;
  driver: 'bridge';
  bridge: string;        // the Linux bridge's name
  subnet: string;        // CIDR
  gateway: string;       // the bridge's address
  created: string;
  internal: boolean;
  /** user-defined networks resolve container names (the embedded DNS); the default bridge does not */
  dns: boolean;
  labels: Record<string, string>;
  isDefault?: boolean;
  /** the bridge's and its veths' MTU (`-o com.docker.network.driver.mtu=N`, else the daemon-wide default); absent: the kernel's 1500 */
  mtu?: number;
}

export interface Endpoint {
  networkId: string;
  networkName: string;
  bridge: string;
  ip: string;
  prefix: number;
  gateway: string;
  mac: string;
  veth: string;          // the host end, on the bridge
  ifname: string;        // eth0, eth1...
  aliases: string[];
  mtu?: number;          // the network's MTU when it has one
  internal?: boolean;    // an --internal network: no default route through it
}

export interface PortBinding { proto: 'tcp' | 'udp'; hostIp: string; hostPort: number; containerPort: number }

export interface Attachment {
  containerId: string;
  name: string;
  /** the process the attachment lives as long as: the foreground `tsrun run`, or the supervisor */
  owner: { pid: number; start: string };
  netns: string;
  endpoints: Endpoint[];
  ports: PortBinding[];
  /** `--dns`: on user networks, the embedded resolver forwards this container's other queries there */
  dns?: string[];
}

export const DEFAULT_BRIDGE = 'tsrun0';

export function networksDir(root: string): string { return path.join(root, 'networks'); }
export function endpointsDir(root: string): string { return path.join(networksDir(root), 'endpoints'); }
export function netnsDir(root: string): string { return path.join(path.resolve(root), 'netns'); }
export function netnsPath(root: string, id: string): string { return path.join(netnsDir(root), id); }

/** Run fn holding <root>/networks/.lock (flock: released by the kernel if we die). */
export function withNetLock<T>(root: string, fn: () => T): T {
  fs.mkdirSync(endpointsDir(root), { recursive: true, mode: 0o700 });
  return withFileLock(path.join(networksDir(root), '.lock'), fn);
}

/** Every `*.json` record in dir (a half-written or unreadable one is skipped: writes are atomic, so it is going away). */
function readRecords<T>(dir: string): T[] {
  let names: string[];
  try { names = fs.readdirSync(dir); } catch { return []; }
  const out: T[] = [];
  for (const n of names) {
    if (!n.endsWith('.json')) continue;
    try { out.push(JSON.parse(fs.readFileSync(path.join(dir, n), 'utf8')) as T); } catch { /* skipped */ }
  }
  return out;
}

export function listNetworks(root: string): NetworkRecord[] {
  return readRecords<NetworkRecord>(networksDir(root)).sort((a, b) => a.created.localeCompare(b.created));
}

export function saveNetwork(root: string, n: NetworkRecord): void {
  fs.mkdirSync(networksDir(root), { recursive: true, mode: 0o700 });
  writeAtomic(path.join(networksDir(root), n.id + '.json'), JSON.stringify(n, null, 2), 0o600);
}

export function deleteNetworkRecord(root: string, id: string): void {
  fs.rmSync(path.join(networksDir(root), id + '.json'), { force: true });
}

/** By name, full id or unique id prefix (docker's lookup order). */
export function findNetwork(root: string, key: string): NetworkRecord | undefined {
  const all = listNetworks(root);
  const byName = all.find((n) => n.name === key);
  if (byName) return byName;
  const exact = all.find((n) => n.id === key);
  if (exact) return exact;
  const hits = all.filter((n) => key.length > 0 && n.id.startsWith(key));
  if (hits.length > 1) throw new TsrunError(`network ${key} is ambiguous (${hits.length} matches found based on ID prefix)`, 125);
  return hits[0];
}

export function newNetworkId(): string { return crypto.randomBytes(32).toString('hex'); }

export function listAttachments(root: string): Attachment[] {
  return readRecords<Attachment>(endpointsDir(root));
}

export function readAttachment(root: string, cid: string): Attachment | undefined {
  try { return JSON.parse(fs.readFileSync(path.join(endpointsDir(root), cid + '.json'), 'utf8')) as Attachment; } catch { return undefined; }
}

export function saveAttachment(root: string, a: Attachment): void {
  writeAtomic(path.join(endpointsDir(root), a.containerId + '.json'), JSON.stringify(a, null, 2), 0o600);
}

export function deleteAttachment(root: string, cid: string): void {
  fs.rmSync(path.join(endpointsDir(root), cid + '.json'), { force: true });
}

/** A process's start time (field 22 of /proc/PID/stat): pid + start identify it across pid reuse. */
export function procStart(pid: number): string | undefined {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** pid is the process that started at `start` and has not exited (a zombie waiting for its reaper has). */
export function procAlive(pid: number, start: string): boolean {
  if (!(pid > 0)) return false;
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return f[19] === start && f[0] !== 'Z' && f[0] !== 'X';
  } catch {
    return false;
  }
}

export function ownerAlive(a: Attachment): boolean {
  return procAlive(a.owner.pid, a.owner.start);
}
