// Containers as docker users see them: status, detached start under a supervisor, stop, wait.
import fs = require('fs');
import path = require('path');
import { TsrunError } from '../runtime/errors';
import * as store from '../runtime/state';
import { currentStatus, kill as runtimeKill, del as runtimeDel } from '../runtime/container';
import * as ct from './containers';
import { containerEvent } from './events';

export interface ExitInfo { exitCode: number; finishedAt: string; oomKilled: boolean; restartCount: number }

export type DockerStatus = 'created' | 'running' | 'paused' | 'restarting' | 'exited' | 'dead';

export interface ContainerState {
  status: DockerStatus;
  pid: number;
  exit?: ExitInfo;
  startedAt?: string;
  /** with a health check: the last recorded status of this run of the container (health.ts) */
  health?: 'starting' | 'healthy' | 'unhealthy';
}

/** health.json's status when it is about this run (pid) of the container; starting before the first probe. */
function healthOf(root: string, c: ct.ContainerRecord, pid: number): ContainerState['health'] {
  if (!c.health) return undefined;
  try {
    const h = JSON.parse(fs.readFileSync(path.join(ct.containerPath(root, c.id), 'health.json'), 'utf8')) as { Status: ContainerState['health']; pid?: number };
    return h.pid === pid ? h.Status : 'starting';
  } catch {
    return 'starting';
  }
}

export function readExit(root: string, id: string): ExitInfo | undefined {
  try { return JSON.parse(fs.readFileSync(path.join(ct.containerPath(root, id), 'exit.json'), 'utf8')) as ExitInfo; } catch { return undefined; }
}

export function supervisorPid(root: string, id: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(path.join(ct.containerPath(root, id), 'supervisor.pid'), 'utf8'));
    // a killed supervisor is a zombie until its reaper gets to it: gone all the same
    const st = pid > 0 ? store.procStat(pid) : undefined;
    if (st && st.state !== 'Z' && st.state !== 'X') return pid;
  } catch { /* none */ }
  return undefined;
}

export function containerState(root: string, c: ct.ContainerRecord): ContainerState {
  let rt: store.ContainerRecord | undefined;
  try { rt = store.loadRecord(root, c.id); } catch { /* not in the runtime */ }
  const exit = readExit(root, c.id) ?? (c.exitCode !== undefined ? { exitCode: c.exitCode, finishedAt: c.finishedAt ?? '', oomKilled: !!c.oomKilled, restartCount: 0 } : undefined);
  if (rt) {
    const st = currentStatus(root, rt);
    if (st === 'running') return { status: 'running', pid: rt.pid, exit, startedAt: c.startedAt ?? rt.created, ...(c.health ? { health: healthOf(root, c, rt.pid) } : {}) };
    if (st === 'paused') return { status: 'paused', pid: rt.pid, exit, startedAt: c.startedAt ?? rt.created };
    if (st === 'created') return { status: 'created', pid: rt.pid, exit };
  }
  if (exit) {
    if (supervisorPid(root, c.id) && !fs.existsSync(path.join(ct.containerPath(root, c.id), 'stopped'))) return { status: 'restarting', pid: 0, exit, startedAt: c.startedAt };
    return { status: 'exited', pid: 0, exit, startedAt: c.startedAt };
  }
  return { status: supervisorPid(root, c.id) ? 'running' : 'created', pid: 0, startedAt: c.startedAt };
}

/** "Up 5 seconds", "Exited (0) 2 minutes ago", "Created" — docker's STATUS column. */
export function statusText(s: ContainerState, ago: (iso?: string) => string, duration: (ms: number) => string): string {
  switch (s.status) {
    case 'running': return `Up ${s.startedAt ? duration(Date.now() - Date.parse(s.startedAt)) : 'Less than a second'}${s.health ? (s.health === 'starting' ? ' (health: starting)' : ` (${s.health})`) : ''}`;
    case 'paused': return `Up ${s.startedAt ? duration(Date.now() - Date.parse(s.startedAt)) : ''} (Paused)`;
    case 'restarting': return `Restarting (${s.exit?.exitCode ?? 0}) ${ago(s.exit?.finishedAt)}`;
    case 'exited': return `Exited (${s.exit?.exitCode ?? 0}) ${ago(s.exit?.finishedAt)}`;
    case 'created': return 'Created';
    default: return s.status;
  }
}

function supervisorBin(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { repoDir } = require('../kernel/native') as typeof import('../kernel/native');
  return path.join(repoDir(), 'native', 'build', 'tsrun-supervisor');
}

export function tsrunBin(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { repoDir } = require('../kernel/native') as typeof import('../kernel/native');
  return path.join(repoDir(), 'bin', 'tsrun');
}

/**
 * Start a container under its supervisor (create + start in the runtime); resolves with init's pid.
 * `attach` gets a socket connected to the supervisor before the container starts (see attach.ts).
 */
export async function startDetached(root: string, c: ct.ContainerRecord, o: { restart?: string; rm?: boolean; tty?: boolean; stdin?: boolean; attach?: (s: import('net').Socket) => void }): Promise<number> {
  const dir = ct.containerPath(root, c.id);
  // the rootfs: mounted already by run -d, unmounted after a foreground run exited
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { ImageStore, mountSnapshot } = require('../image/store') as typeof import('../image/store');
  // a previous run's supervisor finishing (runtime state, network, mount): let it end first (not
  // under the lock, which its release takes)
  for (let i = 0; i < 600 && supervisorPid(root, c.id); i++) await sleep(50);
  // held until the new supervisor has written its pid: the previous one's `container release`
  // (it unmounts) then sees this run and leaves the mount alone
  const lock = mountLock(root, c.id);
  try {
    mountSnapshot(root, c.id, new ImageStore(root).layers, c.chainId);
    return await superviseLocked(root, c, o, dir);
  } finally {
    fs.closeSync(lock);
  }
}

/** An exclusive flock on DIR/.mount.lock (the fd closes it): a start's mount against a previous run's unmount. */
export function mountLock(root: string, id: string): number {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { flockExclusive } = require('../kernel/fsops') as typeof import('../kernel/fsops');
  const file = path.join(ct.containerPath(root, id), '.mount.lock');
  const fd = fs.openSync(file, 'a', 0o600);
  try { flockExclusive(fd, file); } catch (e) { fs.closeSync(fd); throw e; }
  return fd;
}

/** The supervisor's release, once its container stopped for good: the network attachment, and the mount unless a new run owns it. */
export function releaseStopped(root: string, id: string, supervisor: number): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  (require('./network') as typeof import('./network')).release(root, id, supervisor);
  if (!fs.existsSync(ct.containerPath(root, id))) return; // removed meanwhile
  const lock = mountLock(root, id);
  try {
    const sup = supervisorPid(root, id);
    if (sup && sup !== supervisor) return;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    (require('../image/store') as typeof import('../image/store')).unmountSnapshot(root, id);
  } finally {
    fs.closeSync(lock);
  }
}

async function superviseLocked(root: string, c: ct.ContainerRecord, o: { restart?: string; rm?: boolean; tty?: boolean; stdin?: boolean; attach?: (s: import('net').Socket) => void }, dir: string): Promise<number> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { spawn } = require('child_process') as typeof import('child_process');
  try { fs.unlinkSync(path.join(dir, 'stopped')); } catch { /* none */ }
  try { fs.unlinkSync(path.join(dir, 'exit.json')); } catch { /* none */ }
  // runtime state left by a supervisor that was killed (it deletes it itself otherwise): repaired
  let stale = false;
  try { stale = currentStatus(root, store.loadRecord(root, c.id)) === 'stopped'; } catch { /* none */ }
  if (stale) runtimeDel(root, c.id, true);
  const args = ['--id', c.id, '--dir', dir, '--root', path.resolve(root), '--tsrun', tsrunBin(), '--node', process.execPath,
    '--log', c.log?.driver === 'none' ? '/dev/null' : ct.logPath(root, c.id),
    ...(c.log?.maxSize ? ['--log-max-size', String(c.log.maxSize), '--log-max-file', String(c.log.maxFile ?? 1)] : []), '--restart', o.restart ?? 'no',
    ...(c.health ? ['--health-interval', String(c.health.interval)] : []), ...(o.rm ? ['--rm'] : []), ...(o.tty ? ['--tty'] : []),
    ...(o.stdin ?? c.openStdin ? ['--stdin'] : []), ...(o.attach ? ['--attach-fd', '4'] : [])];
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const run = require('./run') as typeof import('./run');
  const attached = run.attachNetwork(root, c);
  const child = spawn(supervisorBin(), args, { stdio: ['ignore', 'ignore', 'ignore', 'pipe', ...(o.attach ? ['pipe' as const] : [])], env, detached: true });
  if (o.attach) o.attach(child.stdio[4] as import('net').Socket); // read it at once (Node resumes unread stdio at the child's exit)
  const outcome: string = await new Promise<string>((resolve, reject) => {
    let buf = '';
    const pipe = child.stdio[3] as NodeJS.ReadableStream;
    pipe.on('data', (d: Buffer) => { buf += d.toString(); });
    pipe.on('end', () => resolve(buf));
    pipe.on('error', reject);
    child.on('error', (e) => reject(new TsrunError(`start the supervisor ${supervisorBin()}: ${e.message}`, 125)));
  }).catch((e) => {
    if (attached) run.detachNetwork(root, c.id);
    throw e;
  });
  const line = outcome.split('\n')[0];
  if (line.startsWith('ok ')) {
    ct.saveContainer(root, { ...ct.findContainer(root, c.id), startedAt: new Date().toISOString() });
    // the network attachment now lives as long as the supervisor
    const sup = supervisorPid(root, c.id);
    if (attached && sup) (require('./network') as typeof import('./network')).handOver(root, c.id, sup); // eslint-disable-line @typescript-eslint/no-require-imports
    return Number(line.slice(3)); // the supervisor wrote the start event
  }
  if (attached) run.detachNetwork(root, c.id);
  const msg = line.startsWith('error ') ? line.slice(6) : `the supervisor of ${c.id.slice(0, 12)} failed without a word`;
  throw new TsrunError(msg.replace(/^tsrun: /, ''), /executable file not found|no such file/.test(msg) ? 127 : /permission denied/i.test(msg) ? 126 : 125);
}

/** docker stop: the stop signal, then SIGKILL after `timeout` seconds; no restart afterwards. */
export async function stopContainer(root: string, c: ct.ContainerRecord, timeout: number, signal = 15): Promise<void> {
  const dir = ct.containerPath(root, c.id);
  fs.writeFileSync(path.join(dir, 'stopped'), '');
  const st = containerState(root, c);
  if (st.status !== 'running' && st.status !== 'paused' && st.status !== 'created') {
    if (st.status !== 'restarting') (require('./run') as typeof import('./run')).detachNetwork(root, c.id); // eslint-disable-line @typescript-eslint/no-require-imports
    return;
  }
  containerEvent(root, c, 'kill', { signal: String(signal) });
  try { runtimeKill(root, c.id, signal, false); } catch { /* already gone */ }
  const deadline = Date.now() + timeout * 1000;
  while (Date.now() < deadline && isUp(root, c)) await sleep(50);
  if (isUp(root, c)) {
    containerEvent(root, c, 'kill', { signal: '9' });
    try { runtimeKill(root, c.id, 9, true); } catch { /* gone */ }
  }
  await waitGone(root, c, 30_000);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  (require('./run') as typeof import('./run')).detachNetwork(root, c.id);
  containerEvent(root, c, 'stop');
}

function isUp(root: string, c: ct.ContainerRecord): boolean {
  try {
    const st = currentStatus(root, store.loadRecord(root, c.id));
    return st === 'running' || st === 'paused' || st === 'created';
  } catch {
    return false;
  }
}

/** Until the supervisor recorded the exit and is gone (runtime state, network and mount released). */
export async function waitGone(root: string, c: ct.ContainerRecord, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const s = containerState(root, c);
    if ((s.status === 'exited' || s.status === 'dead' || (s.status === 'created' && !s.pid)) && !supervisorPid(root, c.id)) return;
    await sleep(30);
  }
}

export async function waitExit(root: string, c: ct.ContainerRecord): Promise<number> {
  for (;;) {
    const s = containerState(root, c);
    if (s.status === 'exited') return s.exit?.exitCode ?? 0;
    if (!fs.existsSync(ct.containerPath(root, c.id))) throw new TsrunError(`No such container: ${c.id}`);
    await sleep(50);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
