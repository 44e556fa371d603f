// The plan: every step of creating a container, in order, as plain data.
// Child steps are serialised (encode.ts) and executed by the C interpreter in
// native/shim.c; parent steps run in TypeScript when the child stops at a
// "sync" step.  `tsrun plan` prints this very list.
import fs = require('fs');
import path = require('path');
import type { Spec, Mount } from './spec';
import { capMask, lastCap } from './caps';
import { readCgroupMounts } from './cgroups/detect';

export const OP = {
  SETNS: 1, UNSHARE: 2, SYNC: 3, FORK: 4, SETSID: 5, PRCTL: 6,
  MOUNT: 7, REMOUNT_RO: 8, MKDIR: 9, MKNOD: 10, SYMLINK: 11, PIVOT_ROOT: 12,
  MOVE_ROOT: 13, CHDIR: 14, SETHOSTNAME: 15, SETDOMAINNAME: 16, WRITE_FILE: 17,
  RLIMIT: 18, MASK: 19, READONLY: 20, CAPBSET: 21, SETGROUPS: 22, SETRESGID: 23,
  SETRESUID: 24, CAPSET: 25, AMBIENT: 26, UMASK: 27, NNP: 28, SECCOMP: 29,
  CONNECT_CONSOLE: 30, CONSOLE: 31, OPEN_FIFO: 32, READY: 33, WAIT_FIFO: 34,
  WAIT_SOCK: 35, CLOSE_FDS: 36, FIND_EXEC: 37, EXECVE: 38, HOOK: 39, TOUCH: 40,
  MOUNT_DEV: 41, ROOT_FD: 42, KEYRING: 43, STDIN_NULL: 44, LO_UP: 45, DUP2: 46,
} as const;

export type ParentAction =
  | { do: 'cgroup-create' }
  | { do: 'clone' }
  | { do: 'usermap' }
  | { do: 'cgroup-apply' }
  | { do: 'hooks'; kind: 'prestart' | 'createRuntime' };

export interface Step {
  where: 'parent' | 'child';
  /** what a person reads: "mount proc on /proc (proc)" */
  text: string;
  code?: number;
  n?: (number | bigint)[];
  s?: (string | Buffer)[];
  parent?: ParentAction;
}

export const NS_FLAGS: Record<string, number> = {
  mount: 0x00020000, cgroup: 0x02000000, uts: 0x04000000, ipc: 0x08000000,
  user: 0x10000000, pid: 0x20000000, network: 0x40000000, time: 0x00000080,
};
const NS_PROC: Record<string, string> = {
  mount: 'mnt', cgroup: 'cgroup', uts: 'uts', ipc: 'ipc', user: 'user', pid: 'pid', network: 'net', time: 'time',
};

// mount(2) flags
const MS = {
  RDONLY: 1, NOSUID: 2, NODEV: 4, NOEXEC: 8, SYNCHRONOUS: 16, REMOUNT: 32, MANDLOCK: 64, DIRSYNC: 128,
  NOSYMFOLLOW: 256, NOATIME: 1024, NODIRATIME: 2048, BIND: 4096, MOVE: 8192, REC: 16384, SILENT: 32768,
  UNBINDABLE: 1 << 17, PRIVATE: 1 << 18, SLAVE: 1 << 19, SHARED: 1 << 20, RELATIME: 1 << 21,
  STRICTATIME: 1 << 24, LAZYTIME: 1 << 25,
};

const MOUNT_FLAGS: Record<string, [number, boolean]> = {
  // option: [flag, clear]
  ro: [MS.RDONLY, false], rw: [MS.RDONLY, true], nosuid: [MS.NOSUID, false], suid: [MS.NOSUID, true],
  nodev: [MS.NODEV, false], dev: [MS.NODEV, true], noexec: [MS.NOEXEC, false], exec: [MS.NOEXEC, true],
  sync: [MS.SYNCHRONOUS, false], async: [MS.SYNCHRONOUS, true], dirsync: [MS.DIRSYNC, false],
  remount: [MS.REMOUNT, false], mand: [MS.MANDLOCK, false], nomand: [MS.MANDLOCK, true],
  atime: [MS.NOATIME, true], noatime: [MS.NOATIME, false], diratime: [MS.NODIRATIME, true],
  nodiratime: [MS.NODIRATIME, false], bind: [MS.BIND, false], rbind: [MS.BIND | MS.REC, false],
  relatime: [MS.RELATIME, false], norelatime: [MS.RELATIME, true], strictatime: [MS.STRICTATIME, false],
  nostrictatime: [MS.STRICTATIME, true], lazytime: [MS.LAZYTIME, false], nolazytime: [MS.LAZYTIME, true],
  nosymfollow: [MS.NOSYMFOLLOW, false], symfollow: [MS.NOSYMFOLLOW, true], defaults: [0, false],
};
const PROPAGATION: Record<string, number> = {
  private: MS.PRIVATE, rprivate: MS.PRIVATE | MS.REC, shared: MS.SHARED, rshared: MS.SHARED | MS.REC,
  slave: MS.SLAVE, rslave: MS.SLAVE | MS.REC, unbindable: MS.UNBINDABLE, runbindable: MS.UNBINDABLE | MS.REC,
};

export const RLIMITS: Record<string, number> = {
  RLIMIT_CPU: 0, RLIMIT_FSIZE: 1, RLIMIT_DATA: 2, RLIMIT_STACK: 3, RLIMIT_CORE: 4, RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6, RLIMIT_NOFILE: 7, RLIMIT_MEMLOCK: 8, RLIMIT_AS: 9, RLIMIT_LOCKS: 10,
  RLIMIT_SIGPENDING: 11, RLIMIT_MSGQUEUE: 12, RLIMIT_NICE: 13, RLIMIT_RTPRIO: 14, RLIMIT_RTTIME: 15,
};

const PR = { SET_DUMPABLE: 4, SET_KEEPCAPS: 8 };
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface ParsedMount { flags: number; clear: number; propagation: number; data: string[]; ro: boolean; bind: boolean }

export function parseMountOptions(options: string[] = []): ParsedMount {
  const r: ParsedMount = { flags: 0, clear: 0, propagation: 0, data: [], ro: false, bind: false };
  for (const o of options) {
    const f = MOUNT_FLAGS[o];
    if (f) {
      if (f[1]) { r.flags &= ~f[0]; r.clear |= f[0]; } else r.flags |= f[0];
      continue;
    }
    const p = PROPAGATION[o];
    if (p) { r.propagation |= p; continue; }
    if (o === 'tmpcopyup' || o.startsWith('idmap') || o.startsWith('ridmap') || o === 'rro' || o === 'rrw') continue;
    r.data.push(o);
  }
  r.ro = (r.flags & MS.RDONLY) !== 0;
  r.bind = (r.flags & MS.BIND) !== 0;
  return r;
}

export interface PlanInput {
  spec: Spec;
  id: string;
  bundle: string;
  rootfs: string;            // absolute
  mode: 'create' | 'run';   // create waits on the fifo; run on the sync socket
  fifo?: string;             // exec.fifo path (create)
  consoleSocket?: string;
  noPivot?: boolean;
  preserveFds?: number;
  noNewKeyring?: boolean;
  stdinNull?: boolean;       // the process gets /dev/null as stdin (docker run without -i)
  stdio?: [number, number];  // its stdout and stderr: these fds of ours (the engine's log pipes)
  cgroupMode: 'unified' | 'hybrid' | 'legacy';
  cgroupDirForClone?: string; // clone3 into this v2 dir
  cgroupV1Dirs: string[];     // v1 dirs the child joins through their tasks file
  seccomp?: { filter: Buffer; flags: number; text: string };
  hookState: (status: string) => [string, string]; // JSON split around the pid
}

// setns order: the user namespace first (it grants the rights for the rest), mount last
function nsRank(t: string): number {
  return t === 'user' ? 0 : t === 'mount' ? 2 : 1;
}

function flagText(n: number): string {
  const names = Object.entries(NS_FLAGS).filter(([, v]) => n & v).map(([k]) => 'CLONE_NEW' + nsCloneName(k));
  return names.length ? names.join('|') : '0';
}
function nsCloneName(t: string): string {
  return ({ mount: 'NS', network: 'NET', user: 'USER', pid: 'PID', uts: 'UTS', ipc: 'IPC', cgroup: 'CGROUP', time: 'TIME' } as Record<string, string>)[t];
}

/** Builds the whole plan for a new container. */
export function containerPlan(inp: PlanInput): { steps: Step[]; cloneFlags: number } {
  const { spec } = inp;
  const proc = spec.process!;
  const linux = spec.linux ?? {};
  const steps: Step[] = [];
  const child = (text: string, code: number, n: (number | bigint)[] = [], s: (string | Buffer)[] = []) =>
    steps.push({ where: 'child', text, code, n, s });
  const parent = (text: string, action: ParentAction) => steps.push({ where: 'parent', text, parent: action });

  const nss = linux.namespaces ?? [];
  const has = (t: string) => nss.some((n) => n.type === t);
  const joins = nss.filter((n) => n.path);
  const news = nss.filter((n) => !n.path);
  const userns = has('user');
  let cloneFlags = 0;
  parent(`create cgroup ${linux.cgroupsPath || '/tsrun/' + inp.id}`, { do: 'cgroup-create' });
  parent('write cgroup limits ' + resourcesText(spec), { do: 'cgroup-apply' });

  // Without a user namespace or namespaces to join, one clone3 creates them all.  Otherwise the
  // child is cloned plain, joins its cgroups while it still may (see below), then setns() into
  // the given namespaces (user first) and unshare()s the new ones, so that they belong to the
  // container's user namespace; a PID namespace then needs one more fork.
  const oneClone = joins.length === 0 && !userns;
  if (oneClone) for (const n of news) if (n.type !== 'cgroup') cloneFlags |= NS_FLAGS[n.type];
  const into = inp.cgroupDirForClone ? ', CLONE_INTO_CGROUP ' + inp.cgroupDirForClone : '';
  parent(`clone3(${flagText(cloneFlags)}${into})`, { do: 'clone' });
  // cgroups: the limits are written before clone; the child joins the v1 hierarchies itself by
  // writing "0" to each `tasks` file (single-threaded, its own tid: no RCU grace period, unlike a
  // move of another process through cgroup.procs, which costs 6-18 ms here).
  for (const dir of inp.cgroupV1Dirs) child(`join cgroup ${dir}`, OP.WRITE_FILE, [], [dir + '/tasks', '0']);
  // still in the host's user namespace: free to raise limits and lower oom_score_adj
  if (proc.oomScoreAdj !== undefined) child(`write ${proc.oomScoreAdj} to /proc/self/oom_score_adj`, OP.WRITE_FILE, [], ['/proc/self/oom_score_adj', String(proc.oomScoreAdj)]);
  for (const r of proc.rlimits ?? []) child(`setrlimit ${r.type} soft=${r.soft} hard=${r.hard}`, OP.RLIMIT, [RLIMITS[r.type], BigInt(r.soft), BigInt(r.hard)]);
  if (!oneClone) {
    const order = [...joins].sort((a, b) => nsRank(a.type) - nsRank(b.type));
    for (const n of order) child(`setns ${n.path} (${n.type})`, OP.SETNS, [NS_FLAGS[n.type]], [n.path!]);
    if (news.some((n) => n.type === 'user')) {
      child('unshare(CLONE_NEWUSER)', OP.UNSHARE, [NS_FLAGS.user]);
      child('wait for the uid/gid maps', OP.SYNC);
      parent(uidMapText(spec), { do: 'usermap' });
    }
    let rest = 0;
    for (const n of news) if (n.type !== 'user' && n.type !== 'cgroup') rest |= NS_FLAGS[n.type];
    if (rest) child(`unshare(${flagText(rest)})`, OP.UNSHARE, [rest]);
  }
  if (userns) {
    child('setresgid(0, 0, 0)', OP.SETRESGID, [0]);
    child('setresuid(0, 0, 0)', OP.SETRESUID, [0]);
  }
  // cgroups: the limits are written before clone; the child joins the v1 hierarchies itself by
  // writing "0" to each `tasks` file (single-threaded, its own tid: no RCU grace period, unlike a
  // move of another process through cgroup.procs, which costs 6-18 ms here).
  if (!oneClone && has('pid')) {
    child('fork into the PID namespace (CLONE_PARENT)', OP.FORK);
  }
  if (news.some((n) => n.type === 'cgroup')) child('unshare(CLONE_NEWCGROUP)', OP.UNSHARE, [NS_FLAGS.cgroup]);
  child('setsid()', OP.SETSID);
  if (!inp.noNewKeyring) child(`join a new session keyring _ses.${inp.id}`, OP.KEYRING, [], ['_ses.' + inp.id]);
  child('prctl(PR_SET_DUMPABLE, 0)', OP.PRCTL, [PR.SET_DUMPABLE, 0]);

  // ---- the root filesystem ----
  const prop = linux.rootfsPropagation ? PROPAGATION[linux.rootfsPropagation] : MS.SLAVE | MS.REC;
  const mountNs = has('mount');
  if (mountNs) {
    const rootProp = prop & (MS.SHARED) ? MS.SLAVE | MS.REC : prop; // runc: shared is applied after pivot
    child(`mount --make-${propName(rootProp)} /`, OP.MOUNT, [rootProp, 0, 0], ['', '/', '', '']);
    child(`mount --rbind ${inp.rootfs} ${inp.rootfs}`, OP.MOUNT, [MS.BIND | MS.REC, 0, 0], [inp.rootfs, inp.rootfs, '', '']);
    child(`open ${inp.rootfs} as the container's root`, OP.ROOT_FD, [], [inp.rootfs]);
    const mounts = spec.mounts ?? [];
    const devMounted = mounts.some((m) => path.posix.normalize(m.destination) === '/dev');
    const devBind = mounts.some((m) => path.posix.normalize(m.destination) === '/dev' && parseMountOptions(m.options).bind);
    let devRo = false;
    for (const m of mounts) {
      const dest = path.posix.normalize(m.destination);
      if (dest === '/dev' && parseMountOptions(m.options).ro && !parseMountOptions(m.options).bind) devRo = true;
      addMount(steps, m, inp, userns, dest === '/dev' && devRo);
    }
    if (!devBind) {
      if (!devMounted) {
        // runc always gives the container a private /dev
      }
      for (const d of DEFAULT_DEVICES) addDevice(steps, d, userns);
      for (const d of linux.devices ?? []) {
        addDevice(steps, { path: d.path, type: d.type, major: d.major ?? 0, minor: d.minor ?? 0, mode: d.fileMode ?? 0o666, uid: d.uid ?? 0, gid: d.gid ?? 0 }, userns);
      }
      for (const [target, link] of DEV_LINKS) child(`symlink ${link} -> ${target}`, OP.SYMLINK, [], [target, link]);
      if (mounts.some((m) => path.posix.normalize(m.destination) === '/dev/pts')) {
        child('symlink /dev/ptmx -> pts/ptmx', OP.SYMLINK, [], ['pts/ptmx', '/dev/ptmx']);
      }
    }
    if (spec.hooks?.prestart?.length || spec.hooks?.createRuntime?.length) {
      child('wait for the prestart and createRuntime hooks', OP.SYNC);
      if (spec.hooks?.prestart?.length) parent(`run ${spec.hooks.prestart.length} prestart hook(s)`, { do: 'hooks', kind: 'prestart' });
      if (spec.hooks?.createRuntime?.length) parent(`run ${spec.hooks.createRuntime.length} createRuntime hook(s)`, { do: 'hooks', kind: 'createRuntime' });
    }
    for (const h of spec.hooks?.createContainer ?? []) addHook(steps, h, 'createContainer', inp.hookState('creating'));
    if (proc.terminal && inp.consoleSocket) child(`connect to the console socket ${inp.consoleSocket}`, OP.CONNECT_CONSOLE, [], [inp.consoleSocket]);
    if (inp.mode === 'create') child(`open ${inp.fifo}`, OP.OPEN_FIFO, [], [inp.fifo!]);
    if (inp.noPivot) child(`move ${inp.rootfs} to / and chroot (--no-pivot)`, OP.MOVE_ROOT, [], [inp.rootfs]);
    else child(`pivot_root ${inp.rootfs}`, OP.PIVOT_ROOT, [], [inp.rootfs]);
    if (prop & MS.SHARED) child(`mount --make-${propName(prop)} /`, OP.MOUNT, [prop, 0, 0], ['', '/', '', '']);
  } else {
    if (proc.terminal && inp.consoleSocket) child(`connect to the console socket ${inp.consoleSocket}`, OP.CONNECT_CONSOLE, [], [inp.consoleSocket]);
    if (inp.mode === 'create') child(`open ${inp.fifo}`, OP.OPEN_FIFO, [], [inp.fifo!]);
    child(`chroot ${inp.rootfs}`, OP.MOVE_ROOT, [], [inp.rootfs]);
  }
  if (proc.terminal) {
    const sz = proc.consoleSize;
    child(inp.consoleSocket ? 'open a pty in /dev/pts, send its master to the console socket' : 'open a pty in /dev/pts, pass its master to tsrun',
      OP.CONSOLE, [inp.consoleSocket ? 1 : 0, sz?.height ?? 0, sz?.width ?? 0]);
  }
  if (mountNs) {
    const devMount = (spec.mounts ?? []).find((m) => path.posix.normalize(m.destination) === '/dev');
    if (devMount && parseMountOptions(devMount.options).ro && !parseMountOptions(devMount.options).bind) child('remount /dev read-only', OP.REMOUNT_RO, [], ['/dev']);
    if (spec.root?.readonly) child('remount / read-only', OP.REMOUNT_RO, [], ['/']);
  }
  for (const [k, v] of Object.entries(linux.sysctl ?? {})) {
    child(`sysctl ${k}=${v}`, OP.WRITE_FILE, [], ['/proc/sys/' + k.replace(/\./g, '/'), v]);
  }
  for (const p of linux.readonlyPaths ?? []) child(`make ${p} read-only`, OP.READONLY, [], [p]);
  for (const p of linux.maskedPaths ?? []) child(`mask ${p}`, OP.MASK, [], [p]);
  if (inp.stdinNull && !proc.terminal) child('open /dev/null as stdin', OP.STDIN_NULL);
  if (inp.stdio && !proc.terminal) inp.stdio.forEach((fd, i) => child(`${i ? 'stderr' : 'stdout'} to the pipe on fd ${fd}`, OP.DUP2, [fd, i + 1]));
  // A new network namespace starts with lo down; crun (and docker/podman for --network none) bring it up.
  if (news.some((n) => n.type === 'network')) child('bring lo up (new network namespace)', OP.LO_UP);
  if (spec.hostname !== undefined && has('uts')) child(`sethostname ${spec.hostname}`, OP.SETHOSTNAME, [], [spec.hostname]);
  if (spec.domainname !== undefined && has('uts')) child(`setdomainname ${spec.domainname}`, OP.SETDOMAINNAME, [], [spec.domainname]);
  addProcessTail(steps, spec, inp.seccomp, inp.mode, inp.hookState('created'), inp.preserveFds ?? 0);
  return { steps, cloneFlags };
}

/** The common end of a container's and an exec'd process's plan: user, caps, seccomp, wait, execve. */
export function addProcessTail(steps: Step[], spec: Spec, seccomp: PlanInput['seccomp'], mode: 'create' | 'run' | 'exec',
  startHookState?: [string, string], preserveFds = 0): void {
  const proc = spec.process!;
  const child = (text: string, code: number, n: (number | bigint)[] = [], s: (string | Buffer)[] = []) =>
    steps.push({ where: 'child', text, code, n, s });
  const env = proc.env ?? [];
  const nnp = !!proc.noNewPrivileges;
  if (nnp) child('prctl(PR_SET_NO_NEW_PRIVS, 1)', OP.NNP);
  child(`chdir ${proc.cwd}`, OP.CHDIR, [], [proc.cwd]);
  if (seccomp && !nnp) child(`load seccomp filter (${seccomp.text})`, OP.SECCOMP, [seccomp.flags], [seccomp.filter]);
  const caps = proc.capabilities ?? {};
  const last = lastCap();
  child(`drop capabilities outside the bounding set (${(caps.bounding ?? []).length} kept)`, OP.CAPBSET, [capMask(caps.bounding ?? []), last]);
  const u = proc.user;
  child('prctl(PR_SET_KEEPCAPS, 1)', OP.PRCTL, [PR.SET_KEEPCAPS, 1]);
  const groups = u.additionalGids ?? [];
  const gb = Buffer.alloc(groups.length * 4);
  groups.forEach((g, i) => gb.writeUInt32LE(g, i * 4));
  child(`setgroups [${groups.join(', ')}]`, OP.SETGROUPS, [], [gb]);
  child(`setresgid(${u.gid})`, OP.SETRESGID, [u.gid]);
  child(`setresuid(${u.uid})`, OP.SETRESUID, [u.uid]);
  child('prctl(PR_SET_KEEPCAPS, 0)', OP.PRCTL, [PR.SET_KEEPCAPS, 0]);
  child(`capset effective=${(caps.effective ?? []).length} permitted=${(caps.permitted ?? []).length} inheritable=${(caps.inheritable ?? []).length}`,
    OP.CAPSET, [capMask(caps.effective ?? []), capMask(caps.permitted ?? []), capMask(caps.inheritable ?? [])]);
  child(`raise ambient capabilities (${(caps.ambient ?? []).length})`, OP.AMBIENT, [capMask(caps.ambient ?? []), last]);
  const args = proc.args ?? [];
  const pathVar = env.find((e) => e.startsWith('PATH='))?.slice(5) ?? DEFAULT_PATH;
  child(`look up ${args[0]} in $PATH`, OP.FIND_EXEC, [], [args[0] ?? '', pathVar]);
  child(`${preserveFds ? `pass fds 3-${2 + preserveFds} on, mark the rest close-on-exec` : 'mark fds >= 3 close-on-exec'}; stdio blocking`, OP.CLOSE_FDS, [preserveFds]);
  child('report ready', OP.READY);
  if (mode === 'create') child('wait for `tsrun start` (exec.fifo)', OP.WAIT_FIFO);
  else if (mode === 'run') child('wait for the go-ahead', OP.WAIT_SOCK);
  if (seccomp && nnp) child(`load seccomp filter (${seccomp.text})`, OP.SECCOMP, [seccomp.flags], [seccomp.filter]);
  for (const h of spec.hooks?.startContainer ?? []) addHook(steps, h, 'startContainer', startHookState ?? ['', '']);
  child(`umask ${(u.umask ?? 0o022).toString(8).padStart(4, '0')}`, OP.UMASK, [u.umask ?? 0o022]);
  child(`execve ${JSON.stringify(args)}`, OP.EXECVE, [], [nulList(args), nulList(env)]);
}

function nulList(a: string[]): Buffer {
  return Buffer.from(a.map((x) => x + '\0').join(''));
}

function addHook(steps: Step[], h: { path: string; args?: string[]; env?: string[]; timeout?: number }, kind: string, state: [string, string]) {
  steps.push({
    where: 'child', text: `run ${kind} hook ${h.path}`, code: OP.HOOK, n: [h.timeout ?? 0],
    s: [h.path, nulList(h.args?.length ? h.args : [h.path]), nulList(h.env ?? []), state[0], state[1]],
  });
}

function propName(p: number): string {
  const r = p & MS.REC ? 'r' : '';
  if (p & MS.SHARED) return r + 'shared';
  if (p & MS.SLAVE) return r + 'slave';
  if (p & MS.PRIVATE) return r + 'private';
  if (p & MS.UNBINDABLE) return r + 'unbindable';
  return 'none';
}

interface DevSpec { path: string; type: string; major: number; minor: number; mode: number; uid: number; gid: number }
const DEFAULT_DEVICES: DevSpec[] = [
  { path: '/dev/null', type: 'c', major: 1, minor: 3, mode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/zero', type: 'c', major: 1, minor: 5, mode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/full', type: 'c', major: 1, minor: 7, mode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/random', type: 'c', major: 1, minor: 8, mode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/urandom', type: 'c', major: 1, minor: 9, mode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/tty', type: 'c', major: 5, minor: 0, mode: 0o666, uid: 0, gid: 0 },
];
const DEV_LINKS: [string, string][] = [
  ['/proc/self/fd', '/dev/fd'], ['/proc/self/fd/0', '/dev/stdin'], ['/proc/self/fd/1', '/dev/stdout'],
  ['/proc/self/fd/2', '/dev/stderr'], ['/proc/kcore', '/dev/core'],
];

function addDevice(steps: Step[], d: DevSpec, userns: boolean) {
  const dir = path.posix.dirname(d.path);
  if (dir !== '/dev') steps.push({ where: 'child', text: `mkdir ${dir}`, code: OP.MKDIR, n: [], s: [dir] });
  if (userns) {
    steps.push({ where: 'child', text: `bind the host's ${d.path} onto ${d.path} (mknod is refused in a user namespace)`, code: OP.MOUNT_DEV, n: [], s: [d.path, d.path] });
    return;
  }
  const S_IFCHR = 0o020000, S_IFBLK = 0o060000, S_IFIFO = 0o010000;
  const t = d.type === 'b' ? S_IFBLK : d.type === 'p' ? S_IFIFO : S_IFCHR;
  const dev = ((d.major & 0xfff) << 8) | (d.minor & 0xff) | ((d.minor & ~0xff) << 12);
  steps.push({
    where: 'child', text: `mknod ${d.path} ${d.type} ${d.major} ${d.minor} mode ${(d.mode & 0o7777).toString(8)}`,
    code: OP.MKNOD, n: [t | (d.mode & 0o7777), dev, d.uid, d.gid], s: [d.path],
  });
}

function addMount(steps: Step[], m: Mount, inp: PlanInput, userns: boolean, deferRo: boolean) {
  const dest = path.posix.normalize(m.destination);
  const o = parseMountOptions(m.options);
  const child = (text: string, code: number, n: (number | bigint)[] = [], s: (string | Buffer)[] = []) =>
    steps.push({ where: 'child', text, code, n, s });
  if (m.type === 'cgroup' || m.type === 'cgroup2') {
    addCgroupMount(steps, dest, o, inp, userns);
    return;
  }
  let source = m.source ?? '';
  let create = 2; // directory
  if (o.bind) {
    if (!path.isAbsolute(source)) source = path.resolve(inp.bundle, source);
    try { if (!fs.statSync(source).isDirectory()) create = 1; } catch { /* reported by mount */ }
  }
  let flags = o.flags;
  if (deferRo) flags &= ~MS.RDONLY;
  const bindRo = o.bind && o.ro;
  if (bindRo) flags &= ~MS.RDONLY;
  const data = o.data.join(',');
  const type = o.bind ? '' : (m.type ?? '');
  const what = o.bind ? `bind ${source}` : `mount ${m.type ?? 'none'}`;
  child(`${what} on ${dest}${o.bind ? '' : ` (${source || m.type})`}${data ? ' ' + data : ''}${flags & MS.RDONLY ? ' ro' : ''}`,
    OP.MOUNT, [flags, create, o.propagation], [source, dest, type, data]);
  // a bind mount ignores other flags: they take effect through a remount
  const extra = o.flags & (MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC | MS.NOATIME | MS.NODIRATIME | MS.RELATIME | MS.STRICTATIME | MS.NOSYMFOLLOW);
  if (o.bind && extra) {
    const names = Object.entries(MOUNT_FLAGS).filter(([k, [f, clr]]) => !clr && f & extra && k !== 'rbind' && k !== 'bind').map(([k]) => k);
    child(`remount ${dest} ${names.join(',')}`, OP.REMOUNT_RO, [extra], [dest]);
  }
}

function addCgroupMount(steps: Step[], dest: string, o: ParsedMount, inp: PlanInput, userns: boolean) {
  const child = (text: string, code: number, n: (number | bigint)[] = [], s: (string | Buffer)[] = []) =>
    steps.push({ where: 'child', text, code, n, s });
  const base = (o.flags & ~(MS.RDONLY | MS.BIND | MS.REC)) | MS.NOSUID | MS.NODEV | MS.NOEXEC;
  if (inp.cgroupMode === 'unified') {
    child(`mount cgroup2 on ${dest}`, OP.MOUNT, [base | (o.ro ? MS.RDONLY : 0), 2, 0], ['cgroup', dest, 'cgroup2', '']);
    return;
  }
  if (userns) return; // v1 hierarchies cannot be mounted from a user namespace
  child(`mount tmpfs on ${dest} (cgroup v1 hierarchies)`, OP.MOUNT, [base, 2, 0], ['tmpfs', dest, 'tmpfs', 'mode=755']);
  for (const h of v1Hierarchies()) {
    const d = `${dest}/${h.name}`;
    child(`mount cgroup ${h.options} on ${d}`, OP.MOUNT, [base | (o.ro ? MS.RDONLY : 0), 2, 0], ['cgroup', d, 'cgroup', h.options]);
    for (const alias of h.aliases) child(`symlink ${dest}/${alias} -> ${h.name}`, OP.SYMLINK, [], [h.name, `${dest}/${alias}`]);
  }
  if (inp.cgroupMode === 'hybrid') child(`mount cgroup2 on ${dest}/unified`, OP.MOUNT, [base | (o.ro ? MS.RDONLY : 0), 2, 0], ['cgroup', `${dest}/unified`, 'cgroup2', '']);
  if (o.ro) child(`remount ${dest} read-only`, OP.REMOUNT_RO, [], [dest]);
}

/** The host's v1 hierarchies, to mount the same ones inside (co-mounted controllers share one). */
function v1Hierarchies(): { name: string; options: string; aliases: string[] }[] {
  const m = readCgroupMounts();
  const byMount = new Map<string, string[]>();
  for (const [ctrl, mp] of Object.entries(m.v1)) byMount.set(mp, [...(byMount.get(mp) ?? []), ctrl]);
  for (const [name, mp] of Object.entries(m.named)) byMount.set(mp, [...(byMount.get(mp) ?? []), name.startsWith('name=') ? name : 'name=' + name]);
  return [...byMount].map(([mp, opts]) => {
    const name = path.posix.basename(mp);
    return { name, options: opts.join(','), aliases: name.includes(',') ? name.split(',') : [] };
  });
}

function uidMapText(spec: Spec): string {
  const m = (l?: { containerID: number; hostID: number; size: number }[]) => (l ?? []).map((x) => `${x.containerID} ${x.hostID} ${x.size}`).join(', ');
  return `write uid_map [${m(spec.linux?.uidMappings)}] and gid_map [${m(spec.linux?.gidMappings)}]`;
}

function resourcesText(spec: Spec): string {
  const r = spec.linux?.resources;
  if (!r) return '(none)';
  const parts: string[] = [];
  if (r.memory?.limit !== undefined) parts.push(`memory=${r.memory.limit}`);
  if (r.memory?.swap !== undefined) parts.push(`memory+swap=${r.memory.swap}`);
  if (r.cpu?.shares !== undefined) parts.push(`cpu.shares=${r.cpu.shares}`);
  if (r.cpu?.quota !== undefined) parts.push(`cpu.quota=${r.cpu.quota}/${r.cpu.period ?? 100000}`);
  if (r.cpu?.cpus) parts.push(`cpus=${r.cpu.cpus}`);
  if (r.pids?.limit !== undefined) parts.push(`pids=${r.pids.limit}`);
  if (r.blockIO?.weight !== undefined) parts.push(`blkio.weight=${r.blockIO.weight}`);
  if (r.devices?.length) parts.push(`${r.devices.length} device rules`);
  return parts.length ? `(${parts.join(' ')})` : '(none)';
}

/** Human-readable listing, numbered like the errors. */
export function formatPlan(steps: Step[]): string {
  const w = String(steps.length).length;
  return steps.map((s, i) => `${String(i + 1).padStart(w)}. [${s.where === 'parent' ? 'tsrun' : 'child'}] ${s.text}`).join('\n') + '\n';
}

export function planJSON(steps: Step[]): unknown[] {
  return steps.map((s, i) => ({
    step: i + 1,
    where: s.where,
    op: s.code ? Object.entries(OP).find(([, v]) => v === s.code)?.[0].toLowerCase() : s.parent?.do,
    text: s.text,
  }));
}

/** Serialise the child steps for native/shim.c (see parse_plan there): one buffer, one pass. */
export function encodePlan(steps: Step[], cloneFlags: number): Buffer {
  const HEAD = 8 + 8 * 4 + 4 * 6;
  const enc: { s: Step; i: number; strs: Buffer[] }[] = [];
  let total = 16;
  steps.forEach((s, i) => {
    if (s.where !== 'child') return;
    const strs = (s.s ?? []).map((x) => (Buffer.isBuffer(x) ? x : Buffer.from(x)));
    enc.push({ s, i, strs });
    let len = HEAD + 6;
    for (const b of strs) len += b.length;
    total += (len + 7) & ~7;
  });
  const out = Buffer.alloc(total);
  out.writeUInt32LE(0x50525354, 0);
  out.writeUInt32LE(enc.length, 4);
  out.writeBigUInt64LE(BigInt(cloneFlags), 8);
  let off = 16;
  for (const { s, i, strs } of enc) {
    const start = off;
    out.writeUInt32LE(s.code!, off);
    out.writeUInt32LE(i, off + 4);
    (s.n ?? []).forEach((v, k) => {
      const at = off + 8 + 8 * k;
      if (typeof v === 'number' && Number.isSafeInteger(v)) {
        out.writeUInt32LE(v >>> 0, at); // low word, then the sign-extended high word
        out.writeInt32LE(Math.floor(v / 0x100000000), at + 4);
      } else out.writeBigInt64LE(BigInt.asIntN(64, BigInt(v)), at);
    });
    off += HEAD;
    for (let k = 0; k < 6; k++) {
      const b = strs[k];
      out.writeUInt32LE(b ? b.length : 0, start + 40 + 4 * k);
      if (b) { b.copy(out, off); off += b.length; }
      off += 1; // NUL (the buffer is zeroed)
    }
    off = (off + 7) & ~7;
  }
  return out;
}
