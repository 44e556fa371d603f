// An image's config (plus the user's flags) → an OCI config.json, with Docker's defaults:
// its capability set, default seccomp profile, masked and read-only paths, a private /dev, and the
// image's env, cwd, user; then docker run's flags: mounts and volumes, resources, capabilities,
// --privileged, --security-opt.
import fs = require('fs');
import os = require('os');
import path = require('path');
import type { Spec, Mount, Resources, Device } from '../runtime/spec';
import type { ImageConfig } from '../image/types';
import { TsrunError } from '../runtime/errors';
import { CAPS, lastCap } from '../runtime/caps';
import { resolveMounts, type MountRequest, type ContainerVolume } from './volumes';
import { DEFAULT_SECCOMP_PROFILE, seccompForContainer, type DockerSeccompProfile } from './seccomp-default';

export const DOCKER_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

export interface RunFlags {
  args?: string[];          // CMD given after the image
  entrypoint?: string;      // --entrypoint ("" clears it)
  env?: string[];           // --env-file entries first, then -e (resolved: KEY=VALUE)
  workdir?: string;
  user?: string;
  hostname?: string;
  tty?: boolean;
  readonly?: boolean;       // --read-only
  /** the state root: named and anonymous volumes live under <root>/volumes */
  root?: string;
  mounts?: MountRequest[];  // -v, --mount, --tmpfs in the order given
  memory?: number;          // bytes
  memorySwap?: number;      // memory + swap in bytes, -1 unlimited
  memoryReservation?: number;
  cpuQuota?: number;        // --cpus (× 100000) or --cpu-quota
  cpuPeriod?: number;
  cpuShares?: number;
  cpusetCpus?: string;
  cpusetMems?: string;
  pidsLimit?: number;       // > 0
  capAdd?: string[];        // normalized: CAP_X or ALL
  capDrop?: string[];
  privileged?: boolean;
  /** --security-opt seccomp=: unconfined, or a profile (Docker's format or OCI's); the default profile otherwise */
  seccomp?: 'unconfined' | DockerSeccompProfile;
  noNewPrivileges?: boolean;
  /** --security-opt systempaths=unconfined: no masked or read-only paths */
  systemPathsUnconfined?: boolean;
  labels?: Record<string, string>;
  stopSignal?: string;
  stopTimeout?: number;
  /** 'null': the container's stdin is /dev/null (docker run without -i) */
  stdin?: 'null';
  /** --init: a static tini, bound read-only at /sbin/docker-init, runs as PID 1 before the command */
  init?: boolean;
  /** --ulimit NAME=SOFT[:HARD] (checked: a known name, soft <= hard) */
  ulimits?: { name: string; soft: number; hard: number }[];
  /** --shm-size: bytes of /dev/shm (docker's default 64 MiB) */
  shmSize?: number;
  /** --sysctl: namespaced ones only (checked against the namespaces the container has) */
  sysctls?: Record<string, string>;
  /** --group-add: group names (from the image's /etc/group) or gids */
  groupAdd?: string[];
  /** --pid host, --ipc host, --uts host: the host's namespace instead of a new one */
  pidHost?: boolean;
  ipcHost?: boolean;
  utsHost?: boolean;
  /** the container shares the host's network namespace (--network host): net.* sysctls are refused */
  netHost?: boolean;
  /** --oom-score-adj, -1000..1000 */
  oomScoreAdj?: number;
  /** --device HOST[:CONTAINER[:PERMS]] */
  devices?: { host: string; container: string; perms: string }[];
}

/** docker's --ulimit names */
export const ULIMITS = ['core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack'];

/** docker's ValidateSysctl: the IPC and network sysctls a container's own namespaces hold. */
function checkSysctls(s: Record<string, string>, f: RunFlags): void {
  const ipc = ['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced'];
  for (const k of Object.keys(s)) {
    if (ipc.includes(k) || k.startsWith('fs.mqueue.')) {
      if (f.ipcHost) throw new TsrunError(`sysctl '${k}' not allowed with IpcMode host`, 125);
    } else if (k.startsWith('net.')) {
      if (f.netHost) throw new TsrunError(`sysctl '${k}' not allowed in host network namespace`, 125);
    } else {
      throw new TsrunError(`sysctl '${k}' is not allowed`, 125);
    }
  }
}

export const INIT_PATH = '/sbin/docker-init';

/** The host's static tini (Debian's tini package), or TSRUN_INIT_BINARY. */
export function initBinary(): string {
  const candidates = process.env.TSRUN_INIT_BINARY ? [process.env.TSRUN_INIT_BINARY] : ['/usr/bin/tini-static', '/usr/bin/docker-init', '/usr/libexec/docker/docker-init'];
  for (const p of candidates) {
    try { if (fs.statSync(p).isFile()) return p; } catch { /* next */ }
  }
  throw new TsrunError(`--init: no static init binary (${candidates.join(', ')}): install the tini package (apt-get install tini), or set TSRUN_INIT_BINARY`, 125);
}

/** What the engine records about a container beside its config.json (fields of ContainerRecord). */
export interface RecordExtras {
  volumes?: ContainerVolume[];
  labels?: Record<string, string>;
  stopSignal?: string;
  stopTimeout?: number;
}

const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const SWAP_WARNING = 'WARNING: Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.\n';

export function buildSpec(img: ImageConfig, rootfs: string, id: string, f: RunFlags): Spec {
  return buildContainer(img, rootfs, id, f).spec;
}

/** The config.json, and what goes into the container's record. Creates the volumes and host dirs it mounts. */
export function buildContainer(img: ImageConfig, rootfs: string, id: string, f: RunFlags): { spec: Spec; extras: RecordExtras } {
  const c = img.config ?? {};
  let entrypoint = c.Entrypoint ?? [];
  let cmd = c.Cmd ?? [];
  if (f.entrypoint !== undefined) { entrypoint = f.entrypoint ? [f.entrypoint] : []; cmd = []; }
  if (f.args && f.args.length) cmd = f.args;
  const args = [...entrypoint, ...cmd];
  if (!args.length) throw new TsrunError('No command specified', 125);
  const init = f.init ? initBinary() : undefined;
  const env = mergeEnv([...(c.Env ?? [DEFAULT_PATH]), ...(f.env ?? [])]);
  if (!env.some((e) => e.startsWith('PATH='))) env.unshift(DEFAULT_PATH);
  if (f.tty && !env.some((e) => e.startsWith('TERM='))) env.push('TERM=xterm');
  if (!env.some((e) => e.startsWith('HOSTNAME='))) env.push(`HOSTNAME=${f.hostname ?? (f.utsHost ? os.hostname() : id.slice(0, 12))}`);
  if (f.utsHost && f.hostname !== undefined) throw new TsrunError('Conflicting options: hostname and the UTS mode', 125);
  if (f.sysctls) checkSysctls(f.sysctls, f);
  const user = resolveUser(rootfs, f.user ?? c.User ?? '');
  if (f.groupAdd?.length) user.additionalGids = [...new Set([...(user.additionalGids ?? []), ...f.groupAdd.map((g) => groupId(rootfs, g))])];
  const devices = (f.devices ?? []).map((d) => ({ ...deviceInfo(d.host), path: d.container, perms: d.perms }));
  const caps = capabilities(f);
  const privileged = !!f.privileged;
  const resources = resourcesFor(f);
  let seccomp;
  if (!privileged && f.seccomp !== 'unconfined') {
    try {
      seccomp = seccompForContainer(f.seccomp ?? DEFAULT_SECCOMP_PROFILE, caps);
    } catch (e) {
      throw new TsrunError(`Error loading seccomp profile: ${(e as Error).message}`, 125);
    }
  }
  const defaults: Mount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', privileged ? 'rw' : 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: [privileged ? 'rw' : 'ro', 'nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    f.ipcHost
      ? { destination: '/dev/shm', type: 'bind', source: '/dev/shm', options: ['rbind', 'nosuid', 'noexec', 'nodev'] }
      : { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${f.shmSize ?? 67108864}`] },
  ].filter((m) => !(f.ipcHost && m.type === 'mqueue')); // mqueue belongs to an IPC namespace: with the host's, the host's /dev/mqueue
  if (f.ipcHost && fs.existsSync('/dev/mqueue')) defaults.push({ destination: '/dev/mqueue', type: 'bind', source: '/dev/mqueue', options: ['rbind', 'nosuid', 'noexec', 'nodev'] });
  // last: the only step with side effects (volumes and host dirs are created)
  const imageVolumes = Object.keys(c.Volumes ?? {});
  const { mounts: userMounts, volumes } = f.mounts?.length || imageVolumes.length
    ? resolveMounts(f.root, rootfs, f.mounts ?? [], imageVolumes)
    : { mounts: [], volumes: [] };
  const userDest = new Set(userMounts.map((m) => path.posix.normalize(m.destination)));
  const unconfinedPaths = privileged || !!f.systemPathsUnconfined;
  const spec: Spec = {
    ociVersion: '1.0.2',
    process: {
      terminal: !!f.tty,
      user,
      args: init ? [INIT_PATH, '--', ...args] : args,
      env,
      cwd: f.workdir || c.WorkingDir || '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      noNewPrivileges: !!f.noNewPrivileges,
      oomScoreAdj: f.oomScoreAdj ?? 0,
      ...(f.ulimits?.length ? { rlimits: f.ulimits.map((u) => ({ type: `RLIMIT_${u.name.toUpperCase()}`, soft: u.soft, hard: u.hard })) } : {}),
    },
    root: { path: rootfs, readonly: !!f.readonly },
    ...(f.utsHost ? {} : { hostname: f.hostname ?? id.slice(0, 12) }),
    // a user's mount replaces the default one at the same place (e.g. --tmpfs /dev/shm)
    mounts: [...defaults.filter((m) => !userDest.has(m.destination)), ...userMounts,
      ...(init ? [{ destination: INIT_PATH, type: 'bind', source: init, options: ['rbind', 'ro', 'nosuid', 'nodev'] }] : [])],
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'network' }, { type: 'cgroup' }]
        .filter((n) => !(n.type === 'pid' && f.pidHost) && !(n.type === 'ipc' && f.ipcHost) && !(n.type === 'uts' && f.utsHost)),
      resources: devices.length && !privileged
        ? { ...resources, devices: [...(resources.devices ?? []), ...devices.map((d) => ({ allow: true, type: d.type, major: d.major, minor: d.minor, access: d.perms }))] }
        : resources,
      ...(privileged || devices.length ? { devices: [...(privileged ? hostDevices() : []), ...devices.map(({ perms: _p, ...d }) => d)] } : {}),
      ...(f.sysctls && Object.keys(f.sysctls).length ? { sysctl: f.sysctls } : {}),
      ...(seccomp ? { seccomp } : {}),
      maskedPaths: unconfinedPaths ? [] : ['/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
        '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap'],
      readonlyPaths: unconfinedPaths ? [] : ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
  const labels = { ...(c.Labels ?? {}), ...(f.labels ?? {}) };
  const extras: RecordExtras = {};
  if (volumes.length) extras.volumes = volumes;
  if (Object.keys(labels).length) extras.labels = labels;
  const stopSignal = f.stopSignal ?? c.StopSignal;
  if (stopSignal) extras.stopSignal = stopSignal;
  if (f.stopTimeout !== undefined) extras.stopTimeout = f.stopTimeout;
  return { spec, extras };
}

/** Docker's TweakCapabilities: the default set, minus --cap-drop, plus --cap-add (ALL in either). */
export function capabilities(f: Pick<RunFlags, 'capAdd' | 'capDrop' | 'privileged'>): string[] {
  // "all": every capability the kernel knows that tsrun itself holds (a container cannot get more)
  let own = -1n;
  try { own = BigInt('0x' + (/^CapBnd:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '')); } catch { /* no /proc: all */ }
  const all = Object.keys(CAPS).filter((n) => CAPS[n] <= lastCap() && ((own >> BigInt(CAPS[n])) & 1n) === 1n);
  if (f.privileged) return all;
  const add = f.capAdd ?? [], drop = f.capDrop ?? [];
  if (!add.length && !drop.length) return [...DOCKER_CAPS];
  if (add.includes('ALL')) return all.filter((c) => !drop.includes(c));
  if (drop.includes('ALL')) return [...new Set(add)];
  return [...new Set([...DOCKER_CAPS.filter((c) => !drop.includes(c)), ...add])];
}

/** "sys_admin", "CAP_SYS_ADMIN", "all" → "CAP_SYS_ADMIN", "ALL"; `invalid CapAdd: unknown capability: "CAP_X"`. */
export function normalizeCaps(list: string[], which: 'CapAdd' | 'CapDrop'): string[] {
  return list.map((raw) => {
    let c = raw.toUpperCase();
    if (c === 'ALL') return c;
    if (!c.startsWith('CAP_')) c = 'CAP_' + c;
    if (!Object.prototype.hasOwnProperty.call(CAPS, c)) throw new TsrunError(`invalid ${which}: unknown capability: "${c}"`, 125);
    return c;
  });
}

function swapAccounting(): boolean {
  if (fs.existsSync('/sys/fs/cgroup/cgroup.controllers')) return true; // cgroup v2: memory.swap.max
  return fs.existsSync('/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes');
}

/** --memory, --memory-swap, --memory-reservation, --cpus, --cpu-*, --cpuset-*, --pids-limit; docker's checks. */
function resourcesFor(f: RunFlags): Resources {
  const r: Resources = { devices: [{ allow: !!f.privileged, access: 'rwm' }] };
  const MIN = 6 * 1024 * 1024;
  const mem = f.memory ?? 0;
  let swap = f.memorySwap;
  if (mem > 0 && mem < MIN) throw new TsrunError('Minimum memory limit allowed is 6MB', 125);
  if (f.memoryReservation !== undefined && f.memoryReservation > 0 && f.memoryReservation < MIN) throw new TsrunError('Minimum memory reservation allowed is 6MB', 125);
  if (mem > 0 && swap !== undefined && swap > 0 && swap < mem) throw new TsrunError('Minimum memoryswap limit should be larger than memory limit, see usage', 125);
  if (mem === 0 && swap !== undefined && swap > 0) throw new TsrunError('You should always set the Memory limit when using Memoryswap limit, see usage', 125);
  if (mem > 0 && f.memoryReservation !== undefined && f.memoryReservation > 0 && mem < f.memoryReservation) {
    throw new TsrunError('Minimum memory limit can not be less than memory reservation limit, see usage', 125);
  }
  if (mem > 0 || swap !== undefined || f.memoryReservation) {
    if (mem > 0 && swap !== -1) {
      if (!swapAccounting()) {
        if (swap !== undefined) process.stderr.write(SWAP_WARNING);
        swap = undefined;
      } else if (swap === undefined || swap === 0) swap = mem * 2; // docker: as much swap as memory
    }
    r.memory = {};
    if (mem > 0) r.memory.limit = mem;
    if (swap !== undefined && swap !== 0) r.memory.swap = swap;
    if (f.memoryReservation) r.memory.reservation = f.memoryReservation;
  }
  const cpu: NonNullable<Resources['cpu']> = {};
  if (f.cpuShares) cpu.shares = f.cpuShares;
  if (f.cpuQuota) cpu.quota = f.cpuQuota;
  if (f.cpuPeriod) cpu.period = f.cpuPeriod;
  if (f.cpusetCpus !== undefined) cpu.cpus = checkCpuset(f.cpusetCpus, 'cpus', '/sys/devices/system/cpu/online');
  if (f.cpusetMems !== undefined) cpu.mems = checkCpuset(f.cpusetMems, 'mems', '/sys/devices/system/node/online');
  if (Object.keys(cpu).length) r.cpu = cpu;
  if (f.pidsLimit !== undefined && f.pidsLimit > 0) r.pids = { limit: f.pidsLimit };
  return r;
}

function parseList(s: string): Set<number> | undefined {
  const out = new Set<number>();
  for (const part of s.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) return undefined;
    const a = Number(m[1]), b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) return undefined;
    for (let i = a; i <= b; i++) out.add(i);
  }
  return out;
}

function checkCpuset(v: string, what: 'cpus' | 'mems', onlineFile: string): string {
  const want = parseList(v);
  if (!want) throw new TsrunError(`Invalid value ${v} for cpuset ${what}`, 125);
  let online = what === 'cpus' ? `0-${os.cpus().length - 1}` : '0';
  try { online = fs.readFileSync(onlineFile, 'utf8').trim(); } catch { /* assume */ }
  const have = parseList(online) ?? new Set<number>();
  if ([...want].some((x) => !have.has(x))) {
    throw new TsrunError(`Requested ${what === 'cpus' ? 'CPUs' : 'memory nodes'} are not available - requested ${v}, available: ${online}`, 125);
  }
  return v;
}

/** --privileged: the host's devices (as docker and containerd's HostDevices list them). */
/** A device node of the host as an OCI device (type, numbers, mode, owner). */
function deviceInfo(p: string): Device {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch (e) {
    throw new TsrunError(`error gathering device information while adding custom device "${p}": ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`, 125);
  }
  if (!st.isCharacterDevice() && !st.isBlockDevice()) throw new TsrunError(`error gathering device information while adding custom device "${p}": not a device node`, 125);
  const lo = st.rdev >>> 0, hi = Math.floor(st.rdev / 2 ** 32) >>> 0; // glibc's major()/minor()
  return {
    type: st.isBlockDevice() ? 'b' : 'c', path: p,
    major: (((lo >>> 8) & 0xfff) | (hi & 0xfffff000)) >>> 0, minor: ((lo & 0xff) | ((lo >>> 12) & 0xffffff00)) >>> 0,
    fileMode: st.mode & 0o7777, uid: st.uid, gid: st.gid,
  };
}

function hostDevices(): Device[] {
  const out: Device[] = [];
  const skip = new Set(['pts', 'shm', 'fd', 'mqueue', '.lxc', '.lxd-mounts', '.udev']);
  const walk = (dir: string) => {
    let names: string[];
    try { names = fs.readdirSync(dir); } catch { return; }
    for (const n of names) {
      const p = path.join(dir, n);
      let st: fs.Stats;
      try { st = fs.lstatSync(p); } catch { continue; }
      if (st.isDirectory()) {
        if (!skip.has(n)) walk(p);
        continue;
      }
      // console and ptmx: the container's own (its pty; /dev/ptmx -> pts/ptmx of its devpts)
      if ((dir === '/dev' && (n === 'console' || n === 'ptmx')) || !(st.isCharacterDevice() || st.isBlockDevice())) continue;
      out.push(deviceInfo(p));
    }
  };
  walk('/dev');
  return out;
}

function mergeEnv(list: string[]): string[] {
  const m = new Map<string, string>();
  for (const e of list) {
    const i = e.indexOf('=');
    m.set(i < 0 ? e : e.slice(0, i), e);
  }
  return [...m.values()];
}

/** Read a file of the container's rootfs without following a symlink out of it (best effort). */
function readInRoot(rootfs: string, rel: string): string | undefined {
  try {
    let p = path.join(rootfs, rel);
    for (let i = 0; i < 8; i++) {
      const st = fs.lstatSync(p);
      if (!st.isSymbolicLink()) break;
      const t = fs.readlinkSync(p);
      p = path.join(rootfs, path.isAbsolute(t) ? t : path.join(path.dirname(p.slice(rootfs.length)), t));
    }
    return fs.readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
}

/** "name", "uid", "name:group", "uid:gid" as Docker resolves them against the image's /etc files. */
export function resolveUser(rootfs: string, spec: string): { uid: number; gid: number; additionalGids?: number[] } {
  if (!spec) spec = '0';
  const [u, g] = spec.split(':');
  const passwd = (readInRoot(rootfs, '/etc/passwd') ?? '').split('\n').map((l) => l.split(':')).filter((f) => f.length >= 4);
  const groups = (readInRoot(rootfs, '/etc/group') ?? '').split('\n').map((l) => l.split(':')).filter((f) => f.length >= 3);
  let uid: number, gid: number, name: string | undefined;
  if (/^\d+$/.test(u)) {
    uid = Number(u);
    const ent = passwd.find((f) => Number(f[2]) === uid);
    gid = ent ? Number(ent[3]) : 0;
    name = ent?.[0];
  } else {
    const ent = passwd.find((f) => f[0] === u);
    if (!ent) throw new TsrunError(`unable to find user ${u}: no matching entries in passwd file`, 126);
    uid = Number(ent[2]); gid = Number(ent[3]); name = u;
  }
  if (g !== undefined && g !== '') {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const ent = groups.find((f) => f[0] === g);
      if (!ent) throw new TsrunError(`unable to find group ${g}: no matching entries in group file`, 126);
      gid = Number(ent[2]);
    }
  }
  const extra = name ? groups.filter((f) => (f[3] ?? '').split(',').includes(name!)).map((f) => Number(f[2])).filter((x) => x !== gid) : [];
  return { uid, gid, ...(extra.length ? { additionalGids: extra } : {}) };
}

/** --group-add: a gid, or a group name from the image's /etc/group. */
function groupId(rootfs: string, g: string): number {
  if (/^\d+$/.test(g)) return Number(g);
  const ent = (readInRoot(rootfs, '/etc/group') ?? '').split('\n').map((l) => l.split(':')).find((f) => f.length >= 3 && f[0] === g);
  if (!ent) throw new TsrunError(`unable to find group ${g}: no matching entries in group file`, 126);
  return Number(ent[2]);
}
