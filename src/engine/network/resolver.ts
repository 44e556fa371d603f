// The lifetime of a root's resolver process (dns.ts is the resolver itself). Both calls run under
// the network lock, so one process at a time starts, signals or stops it.
import fs = require('fs');
import path = require('path');
import { spawn } from 'child_process';
import { TsrunError } from '../../runtime/errors';
import * as st from './store';
import { statusFile, type ResolverStatus } from './dns';

const START_MS = 30_000; // a Node start can take seconds on a loaded machine
const sleeper = new Int32Array(new SharedArrayBuffer(4));

function status(root: string): ResolverStatus | undefined {
  try {
    const s = JSON.parse(fs.readFileSync(statusFile(root), 'utf8')) as ResolverStatus;
    return st.procAlive(s.pid, s.start) ? s : undefined;
  } catch {
    return undefined;
  }
}

function exited(pid: number): boolean {
  return !st.procAlive(pid, st.procStart(pid) ?? '');
}

/** Wait (30 s at most) until the resolver pid wrote a status past generation `after`, or exited. */
function waitScan(root: string, pid: number, after: number): ResolverStatus | undefined {
  for (let i = 0; i < START_MS / 10; i++) {
    const s = status(root);
    if (s && s.pid === pid && s.gen > after) return s;
    if (exited(pid)) return undefined;
    Atomics.wait(sleeper, 0, 0, 10);
  }
  return undefined;
}

/** Resolvers of older versions: one process per network, pid in networks/<id>.dns. */
function stopPerNetworkResolvers(root: string): void {
  let names: string[] = [];
  try { names = fs.readdirSync(st.networksDir(root)).filter((f) => f.endsWith('.dns')); } catch { return; }
  for (const f of names) {
    try {
      const [pid, start] = fs.readFileSync(path.join(st.networksDir(root), f), 'utf8').trim().split(' ');
      if (st.procAlive(Number(pid), start)) {
        process.kill(Number(pid), 'SIGTERM');
        for (let i = 0; i < 100 && !exited(Number(pid)); i++) Atomics.wait(sleeper, 0, 0, 10);
      }
    } catch { /* gone */ }
    fs.rmSync(path.join(st.networksDir(root), f), { force: true });
  }
}

/** The root's resolver serves n: started if need be, told to rescan if it does not serve n yet. */
export function ensureResolver(root: string, n: st.NetworkRecord): void {
  let s = status(root);
  if (s?.serving.includes(n.id)) return;
  if (s) {
    const pid = s.pid;
    process.kill(pid, 'SIGHUP');
    s = waitScan(root, pid, s.gen);
  } else {
    stopPerNetworkResolvers(root);
    fs.rmSync(statusFile(root), { force: true });
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { repoDir } = require('../../kernel/native') as typeof import('../../kernel/native');
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    const child = spawn(process.execPath, [path.join(repoDir(), 'bin', 'tsrun'), '--root', path.resolve(root), 'network', 'dns-serve'],
      { detached: true, stdio: 'ignore', env });
    child.unref();
    s = child.pid ? waitScan(root, child.pid, 0) : undefined;
  }
  if (s?.serving.includes(n.id)) return;
  const why = s?.failed[n.id] ?? 'the resolver process did not start';
  throw new TsrunError(`network ${n.name}: the DNS resolver: ${why}`, 125);
}

/** After a network's record went: the resolver stops listening on it (and exits with the last one). */
export function releaseResolver(root: string): void {
  const s = status(root);
  if (!s) return;
  process.kill(s.pid, 'SIGHUP');
  waitScan(root, s.pid, s.gen);
}
