// An image's config (plus the user's flags) → an OCI config.json, with Docker's defaults:
// its capability set, masked and read-only paths, a private /dev, and the image's env, cwd, user.
import fs = require('fs');
import path = require('path');
import type { Spec } from '../runtime/spec';
import type { ImageConfig } from '../image/types';
import { TsrunError } from '../runtime/errors';

export const DOCKER_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

export interface RunFlags {
  args?: string[];          // CMD given after the image
  entrypoint?: string;      // --entrypoint ("" clears it)
  env?: string[];
  workdir?: string;
  user?: string;
  hostname?: string;
  tty?: boolean;
  readonly?: boolean;
}

const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function buildSpec(img: ImageConfig, rootfs: string, id: string, f: RunFlags): Spec {
  const c = img.config ?? {};
  let entrypoint = c.Entrypoint ?? [];
  let cmd = c.Cmd ?? [];
  if (f.entrypoint !== undefined) { entrypoint = f.entrypoint ? [f.entrypoint] : []; cmd = []; }
  if (f.args && f.args.length) cmd = f.args;
  const args = [...entrypoint, ...cmd];
  if (!args.length) throw new TsrunError('No command specified', 125);
  const env = mergeEnv([...(c.Env ?? [DEFAULT_PATH]), ...(f.env ?? [])]);
  if (!env.some((e) => e.startsWith('PATH='))) env.unshift(DEFAULT_PATH);
  if (f.tty && !env.some((e) => e.startsWith('TERM='))) env.push('TERM=xterm');
  if (!env.some((e) => e.startsWith('HOSTNAME='))) env.push(`HOSTNAME=${f.hostname ?? id.slice(0, 12)}`);
  const user = resolveUser(rootfs, f.user ?? c.User ?? '');
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: !!f.tty,
      user,
      args,
      env,
      cwd: f.workdir || c.WorkingDir || '/',
      capabilities: { bounding: DOCKER_CAPS, effective: DOCKER_CAPS, permitted: DOCKER_CAPS },
      noNewPrivileges: false,
      oomScoreAdj: 0,
    },
    root: { path: rootfs, readonly: !!f.readonly },
    hostname: f.hostname ?? id.slice(0, 12),
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro', 'nosuid', 'noexec', 'nodev'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=67108864'] },
    ],
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'network' }, { type: 'cgroup' }],
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      maskedPaths: ['/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
        '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
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
