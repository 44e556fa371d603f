// The network tools tsrun drives: `ip -batch`, `iptables-restore --noflush`. They run in tsrun's own
// network namespace (whatever namespace tsrun was started in is "the host"). A container's namespace
// is made and set up inside by the shim (netnsCreate, netnsOp), without a process.
import { spawnSync } from 'child_process';
import { TsrunError } from '../../runtime/errors';
import { trace } from '../../runtime/trace';
import type { Endpoint } from './store';

export function tool(cmd: string, args: string[], input?: string, what?: string): string {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  trace(`net: ${cmd} ${args.slice(0, 3).join(' ')}`);
  if (r.error) throw new TsrunError(`${what ?? cmd}: ${cmd}: ${(r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found (install iproute2 / iptables)' : r.error.message}`, 125);
  if (r.status !== 0) {
    const err = (r.stderr || r.stdout || '').trim().split('\n').filter(Boolean).slice(0, 3).join('; ');
    throw new TsrunError(`${what ?? cmd}: ${cmd} ${args.join(' ')}: ${err || `exit status ${r.status}`}`, 125);
  }
  return r.stdout;
}

/** `ip -batch -` */
export function ipBatch(lines: string[], o: { force?: boolean; what?: string } = {}): void {
  if (!lines.length) return;
  tool('ip', [...(o.force ? ['-force'] : []), '-batch', '-'], lines.join('\n') + '\n', o.what);
}

function shim() {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('../../kernel/native') as typeof import('../../kernel/native');
}

/** A new network namespace bound at file (which exists): the shim unshares on this thread, bind-mounts it and comes back. */
export function netnsCreate(file: string, what: string): void {
  const { native, strerror } = shim();
  const r = native().netnsNew(file);
  if (r < 0) throw new TsrunError(`${what}: create (unshare CLONE_NEWNET, bind mount on ${file}): ${strerror(-r)}`, 125);
}

const NETNS_OPS = { up: 1, addr: 2, route: 3 } as const; // native/shim.c tsrun_netns_op

/**
 * Inside the namespace bound at file (this thread enters it and comes back within the call):
 * 'up' IFNAME, 'route' (default via GATEWAY), 'addr' (IFNAME, ADDRESS, PREFIX).
 */
export function netnsOp(file: string, op: 'up' | 'route', arg: string, what: string): void;
export function netnsOp(file: string, op: 'addr', arg: string, what: string, ip: string, prefix: number): void;
export function netnsOp(file: string, op: keyof typeof NETNS_OPS, arg: string, what: string, ip?: string, prefix = 0): void {
  const { native, strerror } = shim();
  const r = op === 'route' ? native().netnsOp(file, NETNS_OPS.route, null, arg, 0) : native().netnsOp(file, NETNS_OPS[op], arg, ip ?? null, prefix);
  if (r < 0) {
    const text = op === 'route' ? `route add default via ${arg}` : op === 'up' ? `link set ${arg} up` : `addr add ${ip}/${prefix} dev ${arg}`;
    throw new TsrunError(`${what}: ${text} (in ${file}): ${strerror(-r)}`, 125);
  }
}

/** An endpoint's interface inside the namespace: its address, then up. */
export function configureInside(file: string, e: Endpoint, what: string): void {
  netnsOp(file, 'addr', e.ifname, what, e.ip, e.prefix);
  netnsOp(file, 'up', e.ifname, what);
}

/** Like ipBatch but tolerant: each line may fail (deleting what may already be gone). */
export function ipBatchQuiet(lines: string[]): void {
  if (!lines.length) return;
  spawnSync('ip', ['-force', '-batch', '-'], { input: lines.join('\n') + '\n', stdio: ['pipe', 'ignore', 'ignore'] });
  trace('net: ip -force -batch (delete)');
}

export function ipJSON<T>(args: string[]): T {
  return JSON.parse(tool('ip', ['-j', ...args]) || '[]') as T;
}
