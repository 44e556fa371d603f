// The runc lifecycle: create, start, run, exec, kill, delete.
import fs = require('fs');
import path = require('path');
import os = require('os');
import type { Spec, Process } from './spec';
import { TsrunError, StepError } from './errors';
import { containerPlan, addProcessTail, encodePlan, formatPlan, planJSON, OP, NS_FLAGS, RLIMITS, type Step, type PlanInput } from './plan';
import { loadSpec } from './validate';
import * as store from './state';
import { cgroupManager, loadCgroupManager, detectCgroupMode, defaultAllowedDevices, type CgroupManager } from './cgroups';
import { runHooks } from './hooks';
import { native, strerror } from '../kernel/native';
import { trace } from './trace';

const MSG_PID = 1, MSG_SYNC = 2, MSG_ERROR = 3, MSG_READY = 4, MSG_CONSOLE = 5;
const O_PATH = 0o10000000, O_DIRECTORY = 0o200000;

export interface CreateOptions {
  root: string;
  id: string;
  bundle: string;
  pidFile?: string;
  consoleSocket?: string;
  noPivot?: boolean;
  preserveFds?: number;
  noNewKeyring?: boolean;
  stdinNull?: boolean;
  /** the process's stdout and stderr: these fds (pipes) instead of ours */
  stdio?: [number, number];
  detach?: boolean;
  keep?: boolean;
}

interface Prepared {
  spec: Spec;
  rootfs: string;
  steps: Step[];
  cloneFlags: number;
  cg?: CgroupManager;
}

function hookStateParts(spec: Spec, id: string, bundle: string, status: string): [string, string] {
  const pre = `{"ociVersion":${JSON.stringify(spec.ociVersion)},"id":${JSON.stringify(id)},"status":"${status}","pid":`;
  const post = `,"bundle":${JSON.stringify(bundle)},"annotations":${JSON.stringify(spec.annotations ?? {})}}`;
  return [pre, post];
}

/**
 * linux.seccomp → BPF through libseccomp (11-25 ms for Docker's default profile, half of it loading
 * koffi and libseccomp). The result is cached under <root>/cache/seccomp by a hash of the profile,
 * the architecture and the libseccomp build, so the next container with the same profile pays ~0.1 ms.
 */
function compileSeccompFor(spec: Spec, root?: string): PlanInput['seccomp'] {
  const s = spec.linux?.seccomp;
  if (!s) return undefined;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const sc = require('./seccomp') as typeof import('./seccomp');
  const text = sc.describeSeccomp(s);
  let file: string | undefined;
  if (root) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const crypto = require('crypto') as typeof import('crypto');
    let lib = '';
    for (const p of ['/usr/lib/x86_64-linux-gnu/libseccomp.so.2', '/usr/lib/aarch64-linux-gnu/libseccomp.so.2', '/usr/lib64/libseccomp.so.2', '/usr/lib/libseccomp.so.2']) {
      try { const st = fs.statSync(p); lib = `${p}:${st.size}:${st.mtimeMs}`; break; } catch { /* next */ }
    }
    const key = crypto.createHash('sha256').update(JSON.stringify(s)).update('\0' + process.arch + '\0' + lib).digest('hex');
    file = path.join(root, 'cache', 'seccomp', key + '.bpf');
    try {
      const b = fs.readFileSync(file);
      if (b.length >= 4 && (b.length - 4) % 8 === 0) return { flags: b.readUInt32LE(0), filter: b.subarray(4), text };
    } catch { /* not cached yet */ }
  }
  let c;
  try {
    c = sc.compileSeccomp(s);
  } catch (e) {
    throw new TsrunError((e as Error).message);
  }
  if (file) {
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      const head = Buffer.alloc(4);
      head.writeUInt32LE(c.flags, 0);
      const tmp = `${file}.${process.pid}`;
      fs.writeFileSync(tmp, Buffer.concat([head, c.filter]), { mode: 0o600 });
      fs.renameSync(tmp, file);
    } catch { /* a cache that cannot be written is only slower */ }
  }
  return { filter: c.filter, flags: c.flags, text };
}

/** Build the plan (no side effects): used by create/run and by `tsrun plan`. */
export function prepare(o: CreateOptions, mode: 'create' | 'run', cg?: { cloneDir?: string; v1Dirs: string[] }, loaded?: { spec: Spec; rootfs: string }): Prepared {
  const bundle = path.resolve(o.bundle);
  const { spec, rootfs } = loaded ?? loadSpec(bundle);
  if (spec.process?.terminal && mode === 'create' && !o.consoleSocket) {
    throw new TsrunError('cannot allocate tty if tsrun will detach without setting console socket');
  }
  if (!spec.process?.terminal && o.consoleSocket) throw new TsrunError('cannot use console socket if tsrun will not detach or allocate tty');
  const { steps, cloneFlags } = containerPlan({
    spec, id: o.id, bundle, rootfs, mode,
    fifo: path.join(store.containerDir(o.root, o.id), 'exec.fifo'),
    consoleSocket: o.consoleSocket ? path.resolve(o.consoleSocket) : undefined,
    noPivot: o.noPivot,
    preserveFds: o.preserveFds,
    noNewKeyring: o.noNewKeyring,
    stdinNull: o.stdinNull,
    stdio: o.stdio,
    cgroupMode: detectCgroupMode(),
    cgroupDirForClone: cg?.cloneDir,
    cgroupV1Dirs: cg?.v1Dirs ?? ['<cgroup>'],
    seccomp: compileSeccompFor(spec, o.root),
    hookState: (st) => hookStateParts(spec, o.id, bundle, st),
  });
  return { spec, rootfs, steps, cloneFlags };
}

export function printPlan(o: CreateOptions, format: string): string {
  let cg: { cloneDir?: string; v1Dirs: string[] } | undefined;
  try {
    const { spec } = loadSpec(path.resolve(o.bundle));
    const m = cgroupManager(spec.linux?.cgroupsPath, o.id);
    cg = { cloneDir: m.unifiedDir(), v1Dirs: [...new Set(Object.values(m.paths.v1))] };
  } catch { /* the plan shows the errors of loadSpec below */ }
  const p = prepare(o, 'run', cg);
  return format === 'json' ? JSON.stringify(planJSON(p.steps), null, 2) + '\n' : formatPlan(p.steps);
}

interface Spawned { pid: number; sock: number; consoleFd: number; }

/** Clone the child and drive the plan until the child reports ready. */
function drive(steps: Step[], cloneFlags: number, cgFd: number, ctx: {
  parentAction: (s: Step, pid: number) => void;
}): Spawned {
  const sh = native();
  const plan = encodePlan(steps, cloneFlags);
  const sockOut = new Int32Array(1);
  trace('native loaded, plan encoded');
  const pid = sh.spawn(plan, plan.length, cgFd, sockOut);
  trace('cloned');
  const cloneStep = steps.findIndex((s) => s.parent?.do === 'clone');
  if (pid < 0) throw new StepError(cloneStep + 1, steps.length, steps[cloneStep].text, -pid, strerror(-pid));
  const sock = sockOut[0];
  let init = pid;
  let consoleFd = -1;
  const msg = new BigInt64Array(4);
  let failure: Error | undefined;
  try {
    for (;;) {
      const r = sh.recv(sock, msg);
      if (r < 0) throw new TsrunError(`read from the container's set-up process: ${strerror(-r)}`);
      if (r === 0) {
        const st = sh.wait(init);
        throw new TsrunError(`container init exited before it was ready (${describeWait(st)})`);
      }
      const type = Number(msg[0]), step = Number(msg[1]), val = Number(msg[2]);
      if (type === MSG_PID) {
        sh.wait(pid); // the intermediate process exits at once
        init = val;
      } else if (type === MSG_SYNC) {
        trace(`sync at step ${step + 1}`);
        let i = step + 1;
        try {
          for (; i < steps.length && steps[i].where === 'parent'; i++) ctx.parentAction(steps[i], init);
        } catch (e) {
          sh.reply(sock, -1n);
          const err = e as Error;
          throw new StepError(i + 1, steps.length, steps[i].text, 0, err.message);
        }
        trace(`sync done`);
        sh.reply(sock, BigInt(init));
      } else if (type === MSG_ERROR) {
        const s = steps[step];
        throw new StepError(step + 1, steps.length, s.text, val, stepReason(s, val), exitCodeFor(s, val));
      } else if (type === MSG_CONSOLE) {
        consoleFd = Number(msg[3]);
      } else if (type === MSG_READY) {
        return { pid: init, sock, consoleFd };
      }
    }
  } catch (e) {
    failure = e as Error;
  }
  // Failure: the child (and init, if forked) must not survive.
  try { process.kill(init, 'SIGKILL'); } catch { /* gone */ }
  sh.wait(init);
  if (init !== pid) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } sh.wait(pid); }
  sh.close(sock);
  if (consoleFd >= 0) sh.close(consoleFd);
  throw failure;
}

function stepReason(s: Step, errno: number): string {
  if (s.code === OP.FIND_EXEC && errno === os.constants.errno.ENOENT) return `exec: ${JSON.stringify(String(s.s?.[0]))}: executable file not found in $PATH`;
  if (s.code === OP.HOOK && errno === os.constants.errno.ECHILD) return 'hook exited with a non-zero status';
  return strerror(errno);
}

function exitCodeFor(s: Step, errno: number): number {
  if (s.code === OP.FIND_EXEC || s.code === OP.EXECVE) return errno === os.constants.errno.ENOENT ? 127 : 126;
  return 1;
}

function describeWait(st: number): string {
  if (st < 0) return strerror(-st);
  if ((st & 0x7f) === 0) return `exit status ${(st >> 8) & 0xff}`;
  return `killed by signal ${st & 0x7f}`;
}

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'];

/** Wait for our child without blocking the event loop (signals keep being forwarded):
 * SIGCHLD wakes us, waitpid(WNOHANG) tells whether it was this child. */
function waitExit(pid: number): Promise<number> {
  const sh = native();
  const EAGAIN = os.constants.errno.EAGAIN;
  return new Promise((resolve) => {
    const keepAlive = setInterval(check, 1000);
    function check() {
      const r = sh.tryWait(pid);
      if (r === -EAGAIN) return;
      process.off('SIGCHLD', check);
      clearInterval(keepAlive);
      resolve(r);
    }
    process.on('SIGCHLD', check);
    check();
  });
}

export function waitStatusToCode(st: number): number {
  if (st < 0) return 255;
  if ((st & 0x7f) === 0) return (st >> 8) & 0xff;
  return 128 + (st & 0x7f);
}

function makeParentActions(spec: Spec, id: string, bundle: string, cg: CgroupManager) {
  return (s: Step, pid: number) => {
    const a = s.parent!;
    switch (a.do) {
      case 'usermap': {
        const fmt = (l?: { containerID: number; hostID: number; size: number }[]) => (l ?? []).map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');
        fs.writeFileSync(`/proc/${pid}/gid_map`, fmt(spec.linux?.gidMappings));
        fs.writeFileSync(`/proc/${pid}/uid_map`, fmt(spec.linux?.uidMappings));
        break;
      }
      case 'cgroup-create': cg.create(); break;
      case 'cgroup-apply': {
        const r = spec.linux?.resources;
        // as runc: the spec's device rules, then the devices every container needs. linux.devices only
        // creates nodes: using one takes a rule (runc too denies a listed device no rule allows)
        const devs = r?.devices ? [...r.devices, ...defaultAllowedDevices] : undefined;
        cg.apply(r && { ...r, devices: devs });
        break;
      }
      case 'hooks': runHooks(a.kind, spec.hooks?.[a.kind], { ociVersion: spec.ociVersion, id, status: 'creating', pid, bundle, annotations: spec.annotations ?? {} });
        break;
      default: break;
    }
  };
}

function writePidFile(file: string, pid: number) {
  const abs = path.resolve(file);
  const tmp = path.join(path.dirname(abs), `.${path.basename(abs)}`);
  fs.writeFileSync(tmp, String(pid), { flag: 'w' });
  fs.renameSync(tmp, abs);
}

/** create (mode 'create') or the first half of run (mode 'run'). */
export function createContainer(o: CreateOptions, mode: 'create' | 'run'): { rec: store.ContainerRecord; spawned: Spawned; cg: CgroupManager; steps: Step[] } {
  trace('createContainer');
  store.validateId(o.id);
  const dir = store.reserve(o.root, o.id);
  let cg: CgroupManager | undefined;
  let cgFd = -1;
  const sh = native();
  try {
    const bundle = path.resolve(o.bundle);
    const loaded = loadSpec(bundle);
    try {
      cg = cgroupManager(loaded.spec.linux?.cgroupsPath, o.id);
    } catch (e) {
      throw new TsrunError((e as Error).message);
    }
    const cloneDir = cg.unifiedDir();
    trace('spec loaded');
    const p = prepare(o, mode, { cloneDir, v1Dirs: [...new Set(Object.values(cg.paths.v1))] }, loaded);
    trace('plan built');
    if (mode === 'create') {
      const r = sh.mkfifo(path.join(dir, 'exec.fifo'), 0o622);
      if (r < 0) throw new TsrunError(`mkfifo ${path.join(dir, 'exec.fifo')}: ${strerror(-r)}`);
    }
    // A first record before anything is created: if this process dies half-way, `delete` finds
    // the cgroups to remove (pid 0 reads as stopped).
    const rec: store.ContainerRecord = {
      id: o.id, pid: 0, startTime: '', bundle, rootfs: p.rootfs,
      created: new Date().toISOString(), owner: process.getuid?.() === 0 ? '' : os.userInfo().username,
      annotations: p.spec.annotations, cgroup: cg.paths, config: p.spec,
      ownPidNs: (p.spec.linux?.namespaces ?? []).some((n) => n.type === 'pid' && !n.path),
    };
    store.saveRecord(o.root, rec);
    const actions = makeParentActions(p.spec, o.id, bundle, cg);
    for (let i = 0; p.steps[i].where === 'parent' && p.steps[i].parent?.do !== 'clone'; i++) {
      try {
        actions(p.steps[i], 0);
      } catch (e) {
        throw new StepError(i + 1, p.steps.length, p.steps[i].text, 0, (e as Error).message);
      }
    }
    trace('cgroup created');
    // clone3(CLONE_INTO_CGROUP) into the v2 dir: on hybrid hosts this one has no controllers, but
    // gives cgroup.kill and cgroup.events; the v1 dirs are joined at the first sync.
    if (cloneDir) {
      cgFd = sh.open(cloneDir, O_PATH | O_DIRECTORY);
      if (cgFd < 0) cgFd = -1;
    }
    const spawned = drive(p.steps, p.cloneFlags, cgFd, { parentAction: actions });
    trace('child ready');
    const st = store.procStat(spawned.pid);
    rec.pid = spawned.pid;
    rec.startTime = st?.start ?? '';
    rec.cgroup = cg.paths;
    store.saveRecord(o.root, rec);
    if (o.pidFile) writePidFile(o.pidFile, spawned.pid);
    trace('state saved');
    return { rec, spawned, cg, steps: p.steps };
  } catch (e) {
    if (cg) { try { cg.destroy(); } catch { /* best effort */ } }
    store.removeDir(o.root, o.id);
    throw e;
  } finally {
    if (cgFd >= 0) sh.close(cgFd);
  }
}

export function create(o: CreateOptions): void {
  const { spawned } = createContainer(o, 'create');
  native().close(spawned.sock);
}

/** Open exec.fifo for reading and take the child's byte: the container proceeds to execve. */
export function start(root: string, id: string): void {
  const rec = store.loadRecord(root, id);
  const fifo = path.join(store.containerDir(root, id), 'exec.fifo');
  const st = store.status(root, rec, () => false);
  if (st !== 'created') throw new TsrunError(`cannot start a container that has ${st === 'stopped' ? 'stopped' : 'already started'}`);
  let fd: number;
  try {
    fd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    throw new TsrunError(`open ${fifo}: ${(e as Error).message}`);
  }
  const buf = Buffer.alloc(1);
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  const take = (): boolean => {
    try {
      return fs.readSync(fd, buf, 0, 1, null) === 1;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      return false;
    }
  };
  // A read of 0 (EOF) only says that no writer holds the fifo right now: the init opens its end
  // when it is next scheduled after our open, which on a loaded machine can take long (CI: 50
  // containers starting at once). So wait for as long as the init lives and the fifo exists
  // (another `start` that took the byte removes it), as runc does.
  for (let i = 0; !take(); i++) {
    const dead = !store.isAlive(rec);
    if (dead && take()) break; // wrote its byte, then exited: the byte stays in the pipe while we hold it
    if (dead || !fs.existsSync(fifo)) {
      fs.closeSync(fd);
      throw new TsrunError(dead ? `cannot start container ${id}: its init process exited before start` : `cannot start container ${id}: it has already started`);
    }
    Atomics.wait(sleeper, 0, 0, Math.min(1 + (i >> 4), 10));
  }
  fs.closeSync(fd);
  fs.rmSync(fifo, { force: true });
  try {
    runHooks('poststart', rec.config.hooks?.poststart, { ...store.toState(rec, 'running') });
  } catch (e) {
    process.stderr.write(`tsrun: warning: ${(e as Error).message}\n`);
  }
}

/**
 * Give the child the go-ahead; it then execs (its end of the socket closes) or reports the step that
 * failed. Returns the pty proxy when the process has a terminal; throws the step's error otherwise
 * (after reaping the child and running `cleanup`).
 */
async function goAhead(spawned: Spawned, steps: Step[], cleanup?: () => void): Promise<{ stop: () => Promise<void> } | undefined> {
  const sh = native();
  const tty = spawned.consoleFd >= 0 ? proxyConsole(spawned.consoleFd) : undefined;
  sh.reply(spawned.sock, 0n);
  const msg = new BigInt64Array(4);
  const r = sh.recv(spawned.sock, msg);
  sh.close(spawned.sock);
  if (r > 0 && Number(msg[0]) === MSG_ERROR) {
    await tty?.stop();
    sh.wait(spawned.pid);
    cleanup?.();
    const s = steps[Number(msg[1])];
    throw new StepError(Number(msg[1]) + 1, steps.length, s.text, Number(msg[2]), stepReason(s, Number(msg[2])), exitCodeFor(s, Number(msg[2])));
  }
  return tty;
}

/** Forward signals to the process (runc does; with a terminal in raw mode ^C arrives through the pty) and wait for it. */
async function forwardAndWait(pid: number, tty: { stop: () => Promise<void> } | undefined): Promise<number> {
  const forward = (sig: NodeJS.Signals) => { try { process.kill(pid, sig); } catch { /* gone */ } };
  for (const s of FORWARDED) if (!(tty && s === 'SIGWINCH')) process.on(s, forward);
  const st = await waitExit(pid);
  trace('container exited');
  await tty?.stop();
  return st;
}

/** run in the foreground: create, go, wait, forward signals, clean up; resolves to the exit code. */
export async function run(o: CreateOptions): Promise<number> {
  const sh = native();
  const { rec, spawned, cg, steps } = createContainer(o, o.detach ? 'create' : 'run');
  if (o.detach) {
    sh.close(spawned.sock);
    start(o.root, o.id);
    return 0;
  }
  const tty = await goAhead(spawned, steps, () => destroy(o.root, rec, cg));
  try {
    runHooks('poststart', rec.config.hooks?.poststart, store.toState(rec, 'running'));
  } catch (e) {
    process.stderr.write(`tsrun: warning: ${(e as Error).message}\n`);
  }
  const st = await forwardAndWait(spawned.pid, tty);
  const code = waitStatusToCode(st);
  let oom = false;
  try { oom = cg.oomKillCount() > 0; } catch { /* no memory controller */ }
  if (oom) process.stderr.write(`tsrun: container ${o.id} was killed by the OOM killer (memory limit too low?)\n`);
  if (!o.keep) destroy(o.root, rec, cg, true);
  trace('destroyed');
  return code;
}

function proxyConsole(fd: number): { stop: () => Promise<void> } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const tty = require('tty') as typeof import('tty');
  const master = new tty.ReadStream(fd);
  const out = process.stdout;
  master.on('data', (d: Buffer) => out.write(d));
  master.on('error', () => { /* EIO when the slave side closes */ });
  const stdin = process.stdin;
  const wasRaw = stdin.isTTY ? stdin.isRaw : false;
  if (stdin.isTTY) stdin.setRawMode(true);
  const out2 = process.stdout;
  const resize = () => { if (out2.isTTY) native().winsize(fd, out2.rows, out2.columns); };
  resize();
  out2.on('resize', resize);
  const onIn = (d: Buffer) => { try { fs.writeSync(fd, d); } catch { /* closed */ } };
  stdin.on('data', onIn);
  stdin.on('end', () => { try { fs.writeSync(fd, Buffer.from([4])); } catch { /* closed */ } });
  return {
    stop: () => new Promise((resolve) => {
      const finish = () => {
        stdin.off('data', onIn);
        out2.off('resize', resize);
        stdin.pause();
        if (stdin.isTTY) stdin.setRawMode(wasRaw);
        master.destroy();
        resolve();
      };
      master.once('close', finish);
      master.once('end', finish);
      setTimeout(finish, 200);
    }),
  };
}

/** Remove everything a container owns: processes, cgroups, state. */
export function destroy(root: string, rec: store.ContainerRecord, cg?: CgroupManager, initReaped = false): void {
  const mgr = cg ?? loadCgroupManager(rec.cgroup);
  if (!initReaped && store.isAlive(rec)) { try { process.kill(rec.pid, 'SIGKILL'); } catch { /* gone */ } }
  // when init of a private PID namespace is gone, the kernel has killed the rest already
  if (!(initReaped && rec.ownPidNs)) { try { mgr.killAll(9); } catch { /* empty */ } }
  try {
    runHooks('poststop', rec.config.hooks?.poststop, store.toState(rec, 'stopped'));
  } catch (e) {
    process.stderr.write(`tsrun: warning: ${(e as Error).message}\n`);
  }
  let cgErr: Error | undefined;
  try { mgr.destroy(); } catch (e) { cgErr = e as Error; }
  store.removeDir(root, rec.id);
  if (cgErr) throw new TsrunError(`container ${rec.id}: remove cgroup: ${cgErr.message}`);
}

export function currentStatus(root: string, rec: store.ContainerRecord) {
  return store.status(root, rec, () => {
    try { return loadCgroupManager(rec.cgroup).isFrozen(); } catch { return false; }
  });
}

export function state(root: string, id: string): object {
  const rec = store.loadRecord(root, id);
  const st = currentStatus(root, rec);
  const out: Record<string, unknown> = { ...store.toState(rec, st) };
  if (st === 'stopped') {
    try { out.oomKilled = loadCgroupManager(rec.cgroup).oomKillCount() > 0; } catch { out.oomKilled = false; }
  }
  return out;
}

export function kill(root: string, id: string, sig: number, all: boolean): void {
  const rec = store.loadRecord(root, id);
  const st = currentStatus(root, rec);
  if (st === 'stopped') {
    if (all) return;
    throw new TsrunError('container not running');
  }
  if (all || (!rec.ownPidNs && sig === 9)) {
    loadCgroupManager(rec.cgroup).killAll(sig);
    if (!all) return;
  }
  try {
    process.kill(rec.pid, sig);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') throw new TsrunError('container not running');
    throw new TsrunError(`kill ${rec.pid}: ${(e as Error).message}`);
  }
}

export function del(root: string, id: string, force: boolean): void {
  let rec: store.ContainerRecord;
  try {
    rec = store.loadRecord(root, id);
  } catch (e) {
    const dir = store.containerDir(root, id);
    if (fs.existsSync(dir) && !fs.existsSync(path.join(dir, 'state.json'))) {
      // a create that was killed half-way: nothing but the directory (and maybe the fifo)
      fs.rmSync(dir, { recursive: true, force: true });
      return;
    }
    if (force && !fs.existsSync(dir)) return;
    throw e;
  }
  const st = currentStatus(root, rec);
  if (st === 'running' || st === 'paused') {
    if (!force) throw new TsrunError(`cannot delete container ${id} that is not stopped: ${st}`);
    const cg = loadCgroupManager(rec.cgroup);
    if (st === 'paused') { try { cg.thaw(); } catch { /* killAll works on frozen tasks on v2 */ } }
    try { process.kill(rec.pid, 'SIGKILL'); } catch { /* gone */ }
    cg.killAll(9);
    const sleeper = new Int32Array(new SharedArrayBuffer(4));
    for (let i = 0; i < 100 && store.isAlive(rec); i++) Atomics.wait(sleeper, 0, 0, 10);
  }
  destroy(root, rec);
}

/** exec: a new process in a running container's namespaces and cgroup. */
export async function exec(root: string, id: string, proc: Process, o: { detach?: boolean; pidFile?: string; consoleSocket?: string; preserveFds?: number; stdinNull?: boolean }): Promise<number> {
  const rec = store.loadRecord(root, id);
  const st = currentStatus(root, rec);
  if (st !== 'running' && st !== 'created') throw new TsrunError(`cannot exec in a ${st} container`);
  const spec: Spec = { ...rec.config, process: proc, hooks: undefined };
  if (proc.terminal && o.detach && !o.consoleSocket) throw new TsrunError('cannot allocate tty if tsrun will detach without setting console socket');
  const steps: Step[] = [];
  const cg = loadCgroupManager(rec.cgroup);
  const cloneDir = cg.unifiedDir();
  steps.push({ where: 'parent', text: `clone3(0${cloneDir ? ', CLONE_INTO_CGROUP ' + cloneDir : ''})`, parent: { do: 'clone' } });
  for (const dir of new Set(Object.values(rec.cgroup.v1))) steps.push({ where: 'child', text: `join cgroup ${dir}`, code: OP.WRITE_FILE, n: [], s: [dir + '/tasks', '0'] });
  const nss = (rec.config.linux?.namespaces ?? []).map((n) => n.type);
  const order = ['user', ...nss.filter((t) => t !== 'user' && t !== 'mount'), 'mount'].filter((t) => nss.includes(t));
  for (const t of order) {
    const nsName = ({ mount: 'mnt', network: 'net' } as Record<string, string>)[t] ?? t;
    steps.push({ where: 'child', text: `setns /proc/${rec.pid}/ns/${nsName} (${t})`, code: OP.SETNS, n: [NS_FLAGS[t]], s: [`/proc/${rec.pid}/ns/${nsName}`] });
  }
  if (nss.includes('pid')) steps.push({ where: 'child', text: 'fork into the PID namespace (CLONE_PARENT)', code: OP.FORK, n: [], s: [] });
  if (proc.terminal) {
    if (o.consoleSocket) steps.push({ where: 'child', text: `connect to the console socket ${o.consoleSocket}`, code: OP.CONNECT_CONSOLE, n: [], s: [path.resolve(o.consoleSocket)] });
    steps.push({ where: 'child', text: 'setsid()', code: OP.SETSID, n: [], s: [] });
    steps.push({ where: 'child', text: 'open a pty', code: OP.CONSOLE, n: [o.consoleSocket ? 1 : 0, proc.consoleSize?.height ?? 0, proc.consoleSize?.width ?? 0], s: [] });
  }
  for (const r of proc.rlimits ?? []) {
    steps.push({ where: 'child', text: `setrlimit ${r.type}`, code: OP.RLIMIT, n: [RLIMITS[r.type], BigInt(r.soft), BigInt(r.hard)], s: [] });
  }
  if (o.stdinNull && !proc.terminal) steps.push({ where: 'child', text: 'open /dev/null as stdin', code: OP.STDIN_NULL, n: [], s: [] });
  addProcessTail(steps, spec, compileSeccompFor(spec, root), 'run', undefined, o.preserveFds ?? 0);
  const sh = native();
  let cgFd = -1;
  if (cloneDir) { cgFd = sh.open(cloneDir, O_PATH | O_DIRECTORY); if (cgFd < 0) cgFd = -1; }
  let spawned: Spawned;
  try {
    spawned = drive(steps, 0, cgFd, { parentAction: () => { /* exec has no parent steps after clone */ } });
  } finally {
    if (cgFd >= 0) sh.close(cgFd);
  }
  if (o.pidFile) writePidFile(o.pidFile, spawned.pid);
  const tty = await goAhead(spawned, steps);
  if (o.detach) return 0;
  const stt = await forwardAndWait(spawned.pid, tty);
  return waitStatusToCode(stt);
}
