// Shared by bench/run.mjs and bench/net.mjs: timing a command, the memory of a process, reaping
// orphans, the podman helper (a private mount + PID namespace, optionally inside a network
// namespace) and a private dockerd in a network namespace of its own.
//
// podman on a hybrid cgroup host: podman/crun refuse to run while cgroup2 is mounted at
// /sys/fs/cgroup/unified. Nothing is unmounted on the host: podman runs through a helper (this
// file with --serve) started once with `unshare -m -p -f --propagation private --mount-proc`;
// in that private mount namespace /sys/fs/cgroup/unified is unmounted and tmpfs is mounted over
// /run/containers, /var/lib/containers and /run/crun (so podman's network/IPAM state, blob-info
// cache and crun's state stay out of the host's directories). The helper times each podman run
// itself, so neither `unshare` nor the request round trip is in podman's numbers. The new PID
// namespace's init is a shell that reaps conmon's orphans (this machine's PID 1 does not reap).
import { spawnSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, accessSync, constants, openSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { createRequire } from 'node:module';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SELF = fileURLToPath(import.meta.url);

export function childEnv() {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

/** Runs cmd once: { ms, status, stderr, stdout? }, wall time from spawn to exit. */
export function timeOnce(cmd, args, capture = false) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ['ignore', capture ? 'pipe' : 'ignore', 'pipe'], env: childEnv(), encoding: 'utf8', timeout: 120_000 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const out = { ms, status: r.status ?? (r.signal ? `signal ${r.signal}` : 'error'), stderr: (r.stderr || r.error?.message || '').trim() };
  if (capture) out.stdout = r.stdout || '';
  return out;
}

/** { pss, rss } in KiB from /proc/PID/smaps_rollup (null if gone). */
export function memOf(pid) {
  try {
    const t = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const get = k => Number((t.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm')) || [])[1]);
    return { pss: get('Pss'), rss: get('Rss') };
  } catch { return null; }
}

export function which(name) {
  if (name.includes('/')) { try { accessSync(name, constants.X_OK); return resolve(name); } catch { return null; } }
  for (const d of (process.env.PATH ?? '').split(':')) {
    if (!d) continue;
    try { accessSync(join(d, name), constants.X_OK); return join(d, name); } catch { /* next */ }
  }
  return null;
}

// --- reaping: this machine's PID 1 may not reap orphans (detached supervisors, their
// containers' processes). We become a child subreaper and reap our own zombie children,
// except the helper, whose exit libuv waits for.
let libc = null;
export function setupReaper() {
  try {
    const koffi = createRequire(join(REPO, 'package.json'))('koffi');
    const lib = koffi.load('libc.so.6');
    libc = {
      prctl: lib.func('int prctl(int, unsigned long, unsigned long, unsigned long, unsigned long)'),
      waitpid: lib.func('int waitpid(int, _Out_ int *, int)'),
    };
    return libc.prctl(36 /* PR_SET_CHILD_SUBREAPER */, 1, 0, 0, 0) === 0;
  } catch { return false; }
}
export function reapZombies(except = new Set()) {
  if (!libc) return;
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || except.has(Number(e))) continue;
    try {
      const st = readFileSync(`/proc/${e}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      if (f[0] === 'Z' && Number(f[1]) === process.pid) libc.waitpid(Number(e), [0], 1 /* WNOHANG */);
    } catch { /* gone */ }
  }
}

/** A network namespace: `ip netns add NAME`, lo up. Returns its path. */
export function addNetns(name) {
  const r = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip netns add ${name}: ${r.stderr.trim()}`);
  spawnSync('nsenter', [`--net=/run/netns/${name}`, 'ip', 'link', 'set', 'lo', 'up']);
  return `/run/netns/${name}`;
}

/** rmdir a cgroup tree /sys/fs/cgroup/<each hierarchy>/<parent>, deepest first. */
export function rmCgroupTree(parent) {
  for (const h of readdirSync('/sys/fs/cgroup')) {
    const top = join('/sys/fs/cgroup', h, parent);
    if (!existsSync(top)) continue;
    const dirs = [];
    const walk = d => { dirs.push(d); for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name)); };
    try { walk(top); } catch { /* */ }
    for (const d of dirs.reverse()) spawnSync('rmdir', [d]);
  }
}

/**
 * The podman helper: a private mount + PID namespace without /sys/fs/cgroup/unified; with
 * netns (a /run/netns path) it is started under `nsenter --net=NETNS`, so podman's netavark makes
 * its bridge, iptables rules and ip_forward inside that namespace.
 */
export async function startNsHelper({ netns } = {}) {
  const hybrid = spawnSync('findmnt', ['-n', '-t', 'cgroup2', '/sys/fs/cgroup/unified']).status === 0;
  const shadows = ['/run/containers', '/var/lib/containers', '/run/crun'].filter(d => existsSync(d));
  const script = [
    'set -e',
    hybrid ? 'umount /sys/fs/cgroup/unified' : ':',
    ...shadows.map(d => `mount -t tmpfs -o mode=0755 tmpfs ${d}`),
    'set +e',
    // not exec: this shell is the PID namespace's init and reaps orphans (conmon double-forks)
    `"${process.execPath}" "${SELF}" --serve`,
    'exit $?',
  ].join('\n');
  const unshare = ['unshare', '-m', '-p', '-f', '--propagation', 'private', '--mount-proc', 'sh', '-c', script];
  const argv = netns ? ['nsenter', `--net=${netns}`, ...unshare] : unshare;
  const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'], env: childEnv() });
  const rl = createInterface({ input: child.stdout });
  const queue = [];
  let exited = null;
  rl.on('line', l => queue.shift()?.res(JSON.parse(l)));
  child.on('exit', c => {
    exited = new Error(`podman helper (unshare -m -p) exited with status ${c}`);
    for (const w of queue.splice(0)) w.rej(exited);
  });
  const next = () => new Promise((res, rej) => (exited ? rej(exited) : queue.push({ res, rej })));
  await next(); // ready
  const ask = q => { const p = next(); child.stdin.write(JSON.stringify(q) + '\n'); return p; };
  return {
    hybrid, shadows, pid: child.pid,
    time: (cmd, args, capture = false) => ask({ cmd, args, capture }),
    mem: pid => ask({ mem: pid }),
    close: () => new Promise(r => { if (exited) return r(); child.once('exit', r); child.stdin.end(); }),
  };
}

/** The parent PID of `pid` (null if gone). */
export function parentOf(pid) {
  try { const st = readFileSync(`/proc/${pid}/stat`, 'utf8'); return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]); } catch { return null; }
}

/**
 * A private dockerd for the benchmark: its own network namespace (`ip netns add`, lo only), data/exec
 * roots and socket under WORK, cgroups (cgroupfs driver) under /tsrun-bench-docker-TAG. Without
 * `bridge` it runs with --bridge none --iptables=false (nothing touches any firewall); with
 * `bridge` it makes its docker0, iptables rules and ip_forward as usual, all inside that
 * namespace. stop() ends it (SIGTERM to dockerd, which stops its containerd), then removes the
 * namespace and the cgroup dirs.
 */
export async function startDockerd(dockerd, cli, WORK, tag, { bridge = false } = {}) {
  const ns = `tsrun-bench-docker-${tag}`;
  const dir = join(WORK, 'docker');
  mkdirSync(dir, { recursive: true });
  const sock = join(dir, 'docker.sock');
  const cgParent = `/tsrun-bench-docker-${tag}`;
  const args = ['-H', `unix://${sock}`];
  addNetns(ns);
  const log = openSync(join(dir, 'dockerd.log'), 'a');
  const net = bridge ? [] : ['--bridge', 'none', '--iptables=false', '--ip6tables=false', '--ip-forward=false', '--ip-masq=false'];
  const child = spawn('nsenter', [`--net=/run/netns/${ns}`, dockerd, '--data-root', join(dir, 'root'), '--exec-root', join(dir, 'exec'),
    '--pidfile', join(dir, 'docker.pid'), '-H', `unix://${sock}`, ...net, '--userland-proxy=false', '--exec-opt', 'native.cgroupdriver=cgroupfs',
    '--cgroup-parent', cgParent, '--storage-driver', 'overlay2'], { stdio: ['ignore', log, log], env: childEnv() });
  let exited = false;
  child.on('exit', () => { exited = true; });
  const stop = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      for (let i = 0; i < 120 && !exited; i++) await new Promise(res => setTimeout(res, 250));
      if (!exited) child.kill('SIGKILL');
    }
    reapZombies();
    spawnSync('ip', ['netns', 'del', ns]);
    rmCgroupTree(cgParent);
    // dockerd unmounts its overlays on shutdown; anything left under WORK is unmounted here.
    const mnts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map(l => l.split(' ')[4]).filter(m => m && m.startsWith(dir + '/'));
    for (const m of mnts.sort().reverse()) spawnSync('umount', ['-l', m]);
  };
  let r;
  for (let i = 0; i < 120; i++) {
    if (exited) { await stop(); throw new Error(`dockerd exited at start-up (see ${join(dir, 'dockerd.log')}: ${readFileSync(join(dir, 'dockerd.log'), 'utf8').trim().split('\n').pop()})`); }
    r = spawnSync(cli, [...args, 'version', '--format', '{{.Server.Version}}'], { encoding: 'utf8', env: childEnv(), timeout: 10_000 });
    if (r.status === 0) return { args, stop, version: r.stdout.trim(), netns: `/run/netns/${ns}` };
    await new Promise(res => setTimeout(res, 250));
  }
  await stop();
  throw new Error('dockerd did not answer within 30 s');
}

export function quantile(sorted, q) {
  if (!sorted.length) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** "Max open files" etc. hard limit of this process (for podman's --ulimit). */
export function hardLimit(name) {
  const l = readFileSync('/proc/self/limits', 'utf8').split('\n').find(x => x.startsWith(name));
  return l ? l.slice(name.length).trim().split(/\s+/)[1] : null;
}

// --- helper mode (startNsHelper): one request per stdin line, one JSON reply per stdout line
if (process.argv[1] === SELF && process.argv[2] === '--serve') {
  const rl = createInterface({ input: process.stdin });
  process.stdout.write(JSON.stringify({ ready: true }) + '\n');
  rl.on('line', line => {
    const q = JSON.parse(line);
    const reply = q.mem != null ? memOf(q.mem) : timeOnce(q.cmd, q.args, q.capture);
    process.stdout.write(JSON.stringify(reply) + '\n');
  });
  rl.on('close', () => process.exit(0));
}
