// The lifetime of a user network's resolver process (dns.ts is the resolver itself).
import fs = require('fs');
import path = require('path');
import { spawn } from 'child_process';
import { TsrunError } from '../../runtime/errors';
import * as st from './store';

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

export function ensureResolver(root: string, n: st.NetworkRecord): void {
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
  // Wait while the child lives (a Node start can take seconds on a loaded machine), 30 s at most.
  const exited = (): boolean => {
    try { return /^\d+ \(.*\) [ZX]/.test(fs.readFileSync(`/proc/${child.pid}/stat`, 'utf8')); } catch { return true; }
  };
  for (let i = 0; i < 3000 && !resolverAlive(root, n) && !exited(); i++) Atomics.wait(sleeper, 0, 0, 10);
  if (!resolverAlive(root, n)) throw new TsrunError(`network ${n.name}: the DNS resolver did not start on ${n.gateway}:53`, 125);
}

export function stopResolver(root: string, n: st.NetworkRecord): void {
  try {
    const [pid, start] = fs.readFileSync(resolverPidFile(root, n), 'utf8').trim().split(' ');
    if (st.procStart(Number(pid)) === start) process.kill(Number(pid), 'SIGTERM');
  } catch { /* not running */ }
  fs.rmSync(resolverPidFile(root, n), { force: true });
}

