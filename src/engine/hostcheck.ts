// Host checks for `tsrun doctor` (and the facts `tsrun info` shows).
//
// Every check only READS the host: /proc, /sys, the mount table, files under the repo, and at
// most two child processes (`iptables --version`, and `ldconfig -p` when libseccomp is not at
// a usual path). Nothing is written, mounted, loaded or enabled: a check that finds a problem
// returns the command that would fix it, and the user decides.
import fs = require('fs');
import os = require('os');
import path = require('path');
import { spawnSync } from 'child_process';
import { readCgroupMounts, type CgroupMounts } from '../runtime/cgroups';
import { repoDir } from '../kernel/native';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
  /** The command (or action) that would fix a warn/fail. doctor prints it; it never runs it. */
  fix?: string;
}

export interface HostCheckOptions {
  /** The state root (--root). */
  root: string;
  /** Where libtsrun.so and tsrun-supervisor are expected (default <repo>/native/build; env TSRUN_DOCTOR_NATIVE_DIR). */
  nativeDir?: string;
  env?: NodeJS.ProcessEnv;
}

// ---------------------------------------------------------------------------------------------
// Small read-only helpers (also used by `tsrun info`)

export function readText(p: string): string | undefined {
  try { return fs.readFileSync(p, 'utf8'); } catch { return undefined; }
}

const exists = (p: string): boolean => { try { fs.accessSync(p); return true; } catch { return false; } };

/** A program on PATH, or in the sbin dirs (sudo and plain `su` may leave them off PATH). */
export function which(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dirs = [...(env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
  for (const d of new Set(dirs)) {
    if (!d) continue;
    const p = path.join(d, name);
    try { fs.accessSync(p, fs.constants.X_OK); if (fs.statSync(p).isFile()) return p; } catch { /* next */ }
  }
  return undefined;
}

/** [major, minor, patch] of the running kernel (os.release(): "6.1.0-18-amd64"). */
export function kernelVersion(release = os.release()): [number, number, number] {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(release);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : [0, 0, 0];
}

const atLeast = (v: [number, number, number], major: number, minor: number): boolean => v[0] > major || (v[0] === major && v[1] >= minor);

interface Mount { point: string; fsType: string; options: string[]; superOptions: string[] }

let mountCache: Mount[] | undefined;
function mounts(): Mount[] {
  if (mountCache) return mountCache;
  const out: Mount[] = [];
  const un = (s: string) => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
  for (const line of (readText('/proc/self/mountinfo') ?? '').split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' '), right = line.slice(sep + 3).split(' ');
    if (left.length < 6) continue;
    out.push({ point: un(left[4]), fsType: right[0], options: left[5].split(','), superOptions: (right[2] ?? '').split(',') });
  }
  return (mountCache = out);
}

/** The mount that holds path (an existing, resolved path): the longest mount point prefix, topmost wins. */
export function mountOf(p: string): Mount | undefined {
  let best: Mount | undefined;
  for (const m of mounts()) {
    const inside = m.point === '/' || p === m.point || p.startsWith(m.point + '/');
    if (inside && (!best || m.point.length >= best.point.length)) best = m;
  }
  return best;
}

/** The path itself if it exists, else its nearest existing ancestor (resolved). */
function nearestExisting(p: string): { path: string; exists: boolean } {
  let cur = path.resolve(p);
  for (let first = true; ; first = false) {
    try { return { path: fs.realpathSync(cur), exists: first }; } catch { /* up */ }
    const up = path.dirname(cur);
    if (up === cur) return { path: '/', exists: false };
    cur = up;
  }
}

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(n < 10 ? 2 : 1) : n}${units[i]}`;
}

export interface IptablesInfo {
  /** Programs found: iptables, iptables-nft, iptables-legacy, iptables-restore. */
  found: Record<string, string | undefined>;
  /** What `iptables --version` says: 'nf_tables' | 'legacy' | undefined (no iptables / unknown). */
  backend?: string;
  version?: string;
}

let iptCache: IptablesInfo | undefined;
/** Which iptables programs exist and `iptables --version` (no rule is read: that needs the kernel). */
export function iptablesInfo(env: NodeJS.ProcessEnv = process.env): IptablesInfo {
  if (iptCache) return iptCache;
  const found: Record<string, string | undefined> = {};
  for (const n of ['iptables', 'iptables-nft', 'iptables-legacy', 'iptables-restore']) found[n] = which(n, env);
  const info: IptablesInfo = { found };
  if (found.iptables) {
    const r = spawnSync(found.iptables, ['--version'], { encoding: 'utf8', timeout: 2000, env: { PATH: env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' } });
    const out = `${r.stdout ?? ''}`.trim();
    const m = /v([\d.]+)(?:\s+\(([\w-]+)\))?/.exec(out);
    if (m) { info.version = m[1]; info.backend = m[2] ?? 'legacy'; }
  }
  return (iptCache = info);
}

export function osPrettyName(): string {
  const text = readText('/etc/os-release') ?? readText('/usr/lib/os-release') ?? '';
  const m = /^PRETTY_NAME=("?)(.*)\1$/m.exec(text);
  return m ? m[2] : 'Linux';
}

/** The cgroup layout, as text: "unified", "hybrid", "legacy". */
export function cgroupLayout(): CgroupMounts {
  return readCgroupMounts();
}

/** Controllers of the cgroup2 hierarchy (cgroup.controllers) and those enabled for children at its root. */
export function v2Controllers(unified: string): { available: string[]; subtree: string[] } {
  const words = (s: string | undefined) => (s ?? '').split(/\s+/).filter(Boolean);
  return { available: words(readText(path.join(unified, 'cgroup.controllers'))), subtree: words(readText(path.join(unified, 'cgroup.subtree_control'))) };
}

/** v1 controllers the kernel has enabled (/proc/cgroups, 4th column = 1). */
function v1Enabled(): string[] {
  const out: string[] = [];
  for (const line of (readText('/proc/cgroups') ?? '').split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(/\s+/);
    if (f[3] === '1') out.push(f[0]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The checks. Each returns one Check; runChecks runs them all.

const ok = (name: string, detail = ''): Check => ({ name, status: 'ok', detail });
const warn = (name: string, detail: string, fix?: string): Check => ({ name, status: 'warn', detail, fix });
const fail = (name: string, detail: string, fix?: string): Check => ({ name, status: 'fail', detail, fix });

export function checkRoot(): Check {
  const uid = process.getuid?.() ?? -1;
  if (uid === 0) return ok('running as root', 'uid 0');
  return fail('running as root', `uid ${uid}: tsrun needs root (namespaces, mounts, cgroups; rootless is not supported yet)`, `sudo tsrun ...`);
}

export function checkKernel(release = os.release()): Check {
  const v = kernelVersion(release);
  const missing: string[] = [];
  if (!atLeast(v, 5, 3)) missing.push('clone3 (5.3)');
  if (!atLeast(v, 5, 6)) missing.push('openat2 (5.6)');
  if (!atLeast(v, 5, 7)) missing.push('CLONE_INTO_CGROUP (5.7)');
  if (missing.length) return fail('kernel', `${release}: missing ${missing.join(', ')}; tsrun needs Linux >= 5.10`, 'apt-get install linux-image-amd64 (a kernel >= 5.10), then reboot');
  if (!atLeast(v, 5, 10)) return warn('kernel', `${release}: below 5.10, the oldest kernel tsrun is tested on`, 'apt-get install linux-image-amd64 (a kernel >= 5.10), then reboot');
  if (!atLeast(v, 6, 8)) {
    return warn('kernel', `${release}: no overlayfs "lowerdir+" (6.8): tsrun falls back to mount(2) with one option string (one 4 KiB page: about 35 layers under /var/lib/tsrun), so images with more layers do not mount`,
      'apt-get install -t bookworm-backports linux-image-amd64 (Debian 12 with backports: a kernel >= 6.8), then reboot');
  }
  return ok('kernel', `${release} (clone3, openat2, CLONE_INTO_CGROUP, overlayfs lowerdir+)`);
}

export function checkNamespaces(): Check {
  const want = ['pid', 'net', 'ipc', 'uts', 'mnt', 'user', 'cgroup'];
  const missing = want.filter((n) => !exists(`/proc/self/ns/${n}`));
  if (missing.length) return fail('namespaces', `missing: ${missing.join(', ')} (no /proc/self/ns/<kind>)`, `a kernel built with CONFIG_${missing.map((n) => n.toUpperCase()).join('_NS, CONFIG_')}_NS`);
  return ok('namespaces', want.join(' '));
}

export function checkUserNamespaces(): Check {
  const max = readText('/proc/sys/user/max_user_namespaces')?.trim();
  if (max === undefined) return warn('user namespaces', 'no /proc/sys/user/max_user_namespaces: the kernel has no user namespaces (configs with a "user" namespace fail)', 'a kernel built with CONFIG_USER_NS');
  if (Number(max) <= 0) return warn('user namespaces', `user.max_user_namespaces = ${max}: configs with a "user" namespace fail`, 'sysctl -w user.max_user_namespaces=15000');
  const notes: string[] = [`max_user_namespaces = ${max}`];
  const unpriv = readText('/proc/sys/kernel/unprivileged_userns_clone')?.trim();
  if (unpriv !== undefined) notes.push(`unprivileged_userns_clone = ${unpriv}${unpriv === '0' ? ' (root is not affected)' : ''}`);
  const aa = readText('/proc/sys/kernel/apparmor_restrict_unprivileged_userns')?.trim();
  if (aa !== undefined) notes.push(`apparmor_restrict_unprivileged_userns = ${aa}${aa === '1' ? ' (root is not affected)' : ''}`);
  return ok('user namespaces', notes.join(', '));
}

const UNIFIED_FIX = 'boot with systemd.unified_cgroup_hierarchy=1 on the kernel command line (GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub and reboot)';

export function checkCgroupMode(m: CgroupMounts = cgroupLayout()): Check {
  const v1 = Object.keys(m.v1).sort();
  if (m.mode === 'unified') return ok('cgroup mode', `unified (cgroup v2 at ${m.unified})`);
  if (m.mode === 'hybrid') {
    return warn('cgroup mode',
      `hybrid: v1 controllers (${v1.join(' ') || 'none'}) plus a cgroup2 at ${m.unified}. tsrun clones each container into its cgroup2 dir ` +
      `(cgroup.kill, cgroup.events) and sets limits through v1; crun and podman refuse hybrid hosts`, UNIFIED_FIX);
  }
  if (!v1.length) return fail('cgroup mode', 'no cgroup hierarchy is mounted under /sys/fs/cgroup', 'mount -t cgroup2 none /sys/fs/cgroup');
  return warn('cgroup mode', `legacy (cgroup v1 only: ${v1.join(' ')}): no cgroup.kill/cgroup.events, tsrun uses v1 for everything`, UNIFIED_FIX);
}

export function checkCgroupControllers(m: CgroupMounts = cgroupLayout()): Check {
  const parts: string[] = [];
  if (m.mode !== 'unified') {
    const mounted = Object.keys(m.v1).sort();
    const unmounted = v1Enabled().filter((c) => !(c in m.v1)).sort();
    parts.push(`v1: ${mounted.join(' ') || 'none'}${unmounted.length ? ` (enabled but not mounted as v1: ${unmounted.join(' ')})` : ''}`);
  }
  if (m.unified) {
    const c = v2Controllers(m.unified);
    parts.push(`v2 (${m.unified}): ${c.available.join(' ') || 'none'}; root subtree_control: ${c.subtree.join(' ') || 'none'}`);
  }
  const need = ['memory', 'pids', 'cpu'];
  const have = new Set([...Object.keys(m.v1), ...(m.unified && m.mode === 'unified' ? v2Controllers(m.unified).available : [])]);
  const missing = need.filter((c) => !have.has(c));
  if (missing.includes('memory')) return warn('cgroup controllers', `no memory controller: memory limits and OOM detection do not work. ${parts.join('; ')}`, 'add cgroup_enable=memory to the kernel command line, then reboot');
  if (missing.length) return warn('cgroup controllers', `missing ${missing.join(', ')}: those limits cannot be set. ${parts.join('; ')}`, `add cgroup_enable=${missing.join(',')} to the kernel command line, then reboot`);
  return ok('cgroup controllers', `memory present; ${parts.join('; ')}`);
}

export function checkCgroupWritable(m: CgroupMounts = cgroupLayout()): Check {
  const dirs = [...new Set([...(m.unified ? [m.unified] : []), ...Object.values(m.v1)])].sort();
  if (!dirs.length) return fail('cgroups writable', 'no cgroup hierarchy mounted', 'mount -t cgroup2 none /sys/fs/cgroup');
  const ro = dirs.filter((d) => { try { fs.accessSync(d, fs.constants.W_OK); return false; } catch { return true; } });
  if (ro.length) return fail('cgroups writable', `not writable: ${ro.join(' ')} (a container without cgroup access? run it privileged with the host's cgroup namespace)`, `mount -o remount,rw ${ro[0]}`);
  return ok('cgroups writable', dirs.length > 2 ? `${m.unified ?? ''}${m.unified ? ' and ' : ''}${Object.keys(m.v1).length} v1 hierarchies` : dirs.join(' '));
}

export function checkOverlay(): Check {
  const fss = readText('/proc/filesystems') ?? '';
  if (/\toverlay$/m.test(fss)) return ok('overlayfs', 'in /proc/filesystems');
  const mod = `/lib/modules/${os.release()}/kernel/fs/overlayfs`;
  return fail('overlayfs', `not in /proc/filesystems${exists(mod) ? ' (the module exists but is not loaded)' : ''}: images cannot be run`, 'modprobe overlay');
}

const SECCOMP_LIBS = ['/usr/lib/x86_64-linux-gnu', '/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/lib/aarch64-linux-gnu', '/usr/lib64', '/lib64', '/usr/lib', '/lib']
  .map((d) => path.join(d, 'libseccomp.so.2'));

export function checkSeccomp(): Check {
  const status = readText('/proc/self/status') ?? '';
  if (!/^Seccomp:/m.test(status)) return fail('seccomp', 'the kernel has no seccomp (no Seccomp: line in /proc/self/status)', 'a kernel built with CONFIG_SECCOMP_FILTER');
  let lib = SECCOMP_LIBS.find(exists);
  if (!lib) {
    const ldconfig = which('ldconfig');
    if (ldconfig) {
      const r = spawnSync(ldconfig, ['-p'], { encoding: 'utf8', timeout: 2000 });
      lib = /libseccomp\.so\.2 .*=> (\S+)/.exec(r.stdout ?? '')?.[1];
    }
  }
  if (!lib) return fail('seccomp', 'libseccomp.so.2 not found (configs with linux.seccomp fail)', 'apt-get install libseccomp2');
  return ok('seccomp', `kernel filter support, ${lib}`);
}

export function checkIptables(env: NodeJS.ProcessEnv = process.env): Check {
  const i = iptablesInfo(env);
  const have = ['iptables-nft', 'iptables-legacy'].filter((n) => i.found[n]);
  if (!i.found.iptables && !have.length) return warn('iptables', 'none found (not needed yet; container networking will need it)', 'apt-get install iptables');
  const what = i.found.iptables ? `iptables ${i.version ?? '?'} (${i.backend ?? 'unknown backend'})` : 'no "iptables" on PATH';
  return ok('iptables', `${what}; installed: ${have.join(', ') || 'neither iptables-nft nor iptables-legacy'}`);
}

export function checkIpForward(): Check {
  const v = readText('/proc/sys/net/ipv4/ip_forward')?.trim();
  if (v === undefined) return ok('ip_forward', 'no /proc/sys/net/ipv4/ip_forward (not in a network namespace with IPv4?)');
  if (v === '0') {
    return warn('ip_forward', 'net.ipv4.ip_forward = 0 on the host; tsrun sets it inside its own network namespaces, and bridge networking will enable it on the host when it needs it',
      'sysctl -w net.ipv4.ip_forward=1');
  }
  return ok('ip_forward', `net.ipv4.ip_forward = ${v}`);
}

export function checkBinaries(env: NodeJS.ProcessEnv = process.env): Check {
  const want: [string, string][] = [['ip', 'iproute2'], ['iptables-restore', 'iptables']];
  const missing = want.filter(([b]) => !which(b, env));
  const found = want.filter(([b]) => which(b, env)).map(([b]) => b);
  if (missing.length) return warn('binaries', `missing ${missing.map(([b, p]) => `${b} (${p})`).join(', ')}: needed for networking`, `apt-get install ${[...new Set(missing.map(([, p]) => p))].join(' ')}`);
  return ok('binaries', `${found.join(' ')} (tar is not needed: built in)`);
}

export function checkNode(): Check {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 20) return fail('node', `${process.version}: tsrun needs Node.js >= 20`, 'install Node.js 20 or newer (e.g. apt-get install nodejs from a repository that has it)');
  return ok('node', process.version);
}

function nativeDirOf(o: HostCheckOptions): string {
  return o.nativeDir ?? (o.env ?? process.env).TSRUN_DOCTOR_NATIVE_DIR ?? path.join(repoDir(), 'native', 'build');
}

export function checkBuild(o: HostCheckOptions): Check {
  const env = o.env ?? process.env;
  const dir = nativeDirOf(o);
  const shim = (!o.nativeDir && !env.TSRUN_DOCTOR_NATIVE_DIR && env.TSRUN_SHIM) || path.join(dir, 'libtsrun.so');
  const sup = path.join(dir, 'tsrun-supervisor');
  const arch = process.arch;
  const koffiNode = path.join(repoDir(), 'node_modules', 'koffi', 'build', 'koffi', `linux_${arch}`, 'koffi.node');
  const missing = [shim, sup].filter((p) => !exists(p));
  if (missing.length) return fail('build', `missing ${missing.join(', ')}`, `cd ${repoDir()} && npm run build`);
  if (!exists(koffiNode) && !exists(path.join(repoDir(), 'node_modules', 'koffi'))) return fail('build', `no koffi in ${path.join(repoDir(), 'node_modules')}`, `cd ${repoDir()} && npm ci`);
  return ok('build', `${shim}, ${sup}`);
}

/** A static musl supervisor is ~60 KiB; a static glibc one ~700 KiB. */
export function checkMusl(o: HostCheckOptions): Check {
  const env = o.env ?? process.env;
  const sup = path.join(nativeDirOf(o), 'tsrun-supervisor');
  let size: number | undefined;
  try { size = fs.statSync(sup).size; } catch { /* reported by the build check */ }
  const musl = which('musl-gcc', env);
  const glibcBuilt = size !== undefined && size > 300 * 1024;
  if (!musl) {
    return warn('musl-gcc', `not found${glibcBuilt ? `: the supervisor (${humanBytes(size!)}) is built with glibc` : ''}; a glibc supervisor costs ~640 KiB PSS per detached container instead of ~76 KiB`,
      `apt-get install musl-tools && cd ${repoDir()} && make -C native -B build/tsrun-supervisor`);
  }
  if (glibcBuilt) return warn('musl-gcc', `${musl} is there but the supervisor (${humanBytes(size!)}) was built with glibc: ~640 KiB PSS per detached container instead of ~76 KiB`, `cd ${repoDir()} && make -C native -B build/tsrun-supervisor`);
  return ok('musl-gcc', `${musl}${size !== undefined ? `; supervisor ${humanBytes(size)} (musl)` : ''}`);
}

/** Filesystems that cannot hold a state root at all. */
const PSEUDO_FS = new Set(['proc', 'sysfs', 'cgroup', 'cgroup2', 'devpts', 'debugfs', 'tracefs', 'securityfs', 'bpf', 'configfs', 'pstore', 'mqueue', 'fusectl', 'efivarfs', 'binfmt_misc', 'autofs', 'nsfs', 'hugetlbfs', 'squashfs', 'iso9660']);

export interface RootFacts { root: string; exists: boolean; existing: string; fsType?: string; mountPoint?: string; free?: number; readonly?: boolean }

export function rootFacts(root: string): RootFacts {
  const n = nearestExisting(root);
  const m = mountOf(n.path);
  let free: number | undefined;
  try { const s = fs.statfsSync(n.path); free = s.bavail * s.bsize; } catch { /* unknown */ }
  return { root: path.resolve(root), exists: n.exists, existing: n.path, fsType: m?.fsType, mountPoint: m?.point, free, readonly: m ? m.options.includes('ro') || m.superOptions.includes('ro') : undefined };
}

export function checkStateRoot(root: string): Check {
  const name = 'state root';
  const f = rootFacts(root);
  const other = `tsrun --root DIR (or TSRUN_ROOT=DIR) with DIR on a local disk (ext4, xfs, btrfs)`;
  let st: fs.Stats | undefined;
  try { st = fs.statSync(f.existing); } catch { /* raced away */ }
  if (!st?.isDirectory()) {
    return fail(name, f.exists ? `${f.root} is not a directory` : `${f.root} cannot be created: ${f.existing} is not a directory`, other);
  }
  const where = `${f.fsType ?? 'unknown fs'} at ${f.mountPoint ?? '?'}`;
  const kernelDir = ['/proc', '/sys', '/dev'].find((d) => f.existing === d || f.existing.startsWith(d + '/'));
  if (kernelDir) return fail(name, `${f.root} is under ${kernelDir} (the kernel's own files): cannot hold tsrun's state`, other);
  if (f.fsType && PSEUDO_FS.has(f.fsType)) return fail(name, `${f.root}${f.exists ? '' : ` (under ${f.existing})`} is on ${where}: cannot hold tsrun's state`, other);
  if (f.readonly) return fail(name, `${f.root}${f.exists ? '' : ` (under ${f.existing})`} is on a read-only mount (${where})`, `mount -o remount,rw ${f.mountPoint}  (or ${other})`);
  try { fs.accessSync(f.existing, fs.constants.W_OK | fs.constants.X_OK); } catch (e) {
    return fail(name, `${f.existing} is not writable (${(e as NodeJS.ErrnoException).code})`, other);
  }
  const state = f.exists ? `${f.root} exists` : `${f.root} does not exist yet (created on first use under ${f.existing})`;
  const freeText = f.free !== undefined ? `, ${humanBytes(f.free)} free` : '';
  if (f.fsType === 'overlay') return warn(name, `${state}, on overlayfs (${f.mountPoint}): overlay upper dirs cannot be on overlayfs, so containers from images will not mount${freeText}`, other);
  if (f.free !== undefined && f.free < 1024 ** 3) return warn(name, `${state}, on ${where}: only ${humanBytes(f.free)} free`, `free space on ${f.mountPoint} (e.g. tsrun image prune -a)`);
  return ok(name, `${state}, on ${where}${freeText}${f.fsType === 'tmpfs' ? ' (tmpfs: lost at reboot)' : ''}`);
}

export function checkExtraCaCerts(env: NodeJS.ProcessEnv = process.env): Check {
  const v = env.NODE_EXTRA_CA_CERTS;
  if (v) return warn('NODE_EXTRA_CA_CERTS', `set (${v}): Node reads the CA bundle at start-up, ~48 ms on every tsrun command`, 'unset NODE_EXTRA_CA_CERTS');
  return ok('NODE_EXTRA_CA_CERTS', 'not set');
}

/** `run --init` binds a static tini (the paths of initBinary() in spec.ts). */
export function checkInit(env: NodeJS.ProcessEnv = process.env): Check {
  const candidates = env.TSRUN_INIT_BINARY ? [env.TSRUN_INIT_BINARY] : ['/usr/bin/tini-static', '/usr/bin/docker-init', '/usr/libexec/docker/docker-init'];
  const found = candidates.find((p) => { try { return fs.statSync(p).isFile(); } catch { return false; } });
  if (found) return ok('init (--init)', found);
  return warn('init (--init)', `no static init binary (${candidates.join(', ')}): run --init fails`, 'apt-get install tini');
}

/** Every check, in the order doctor prints them. */
export function runChecks(o: HostCheckOptions): Check[] {
  const env = o.env ?? process.env;
  let m: CgroupMounts | undefined;
  try { m = cgroupLayout(); } catch { /* no mount table */ }
  const cg = (f: (m: CgroupMounts) => Check, name: string): Check => (m ? f(m) : fail(name, 'cannot read /proc/self/mountinfo', 'mount -t proc proc /proc'));
  const checks: [string, () => Check][] = [
    ['running as root', checkRoot],
    ['kernel', () => checkKernel()],
    ['namespaces', checkNamespaces],
    ['user namespaces', checkUserNamespaces],
    ['cgroup mode', () => cg(checkCgroupMode, 'cgroup mode')],
    ['cgroup controllers', () => cg(checkCgroupControllers, 'cgroup controllers')],
    ['cgroups writable', () => cg(checkCgroupWritable, 'cgroups writable')],
    ['overlayfs', checkOverlay],
    ['seccomp', checkSeccomp],
    ['iptables', () => checkIptables(env)],
    ['ip_forward', checkIpForward],
    ['binaries', () => checkBinaries(env)],
    ['node', checkNode],
    ['build', () => checkBuild(o)],
    ['musl-gcc', () => checkMusl(o)],
    ['init (--init)', () => checkInit(env)],
    ['state root', () => checkStateRoot(o.root)],
    ['NODE_EXTRA_CA_CERTS', () => checkExtraCaCerts(env)],
  ];
  return checks.map(([name, c]) => {
    try { return c(); } catch (e) { return fail(name, `the check itself failed: ${(e as Error).message}`); }
  });
}
