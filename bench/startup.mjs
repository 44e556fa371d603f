#!/usr/bin/env node
// Container start-up benchmark: `tsrun run`, `runc run`, `crun run` on the same busybox
// bundle (namespaces pid, ipc, uts, mount, network; a /proc mount; no resource limits;
// process /bin/true), interleaved round by round, with `node -e 0` as the floor for a
// Node.js program. Prints median / p10 / p90 (ms) per runtime and the ratios tsrun/runc
// and tsrun/crun.
//
// usage: bench/startup.sh [--rounds 30] [--warmup 3] [--only tsrun,runc,crun,node] [--json FILE]
//   env TSRUN=path   the tsrun binary (default <repo>/bin/tsrun; skipped with a message if absent)
//
// Every child runs with NODE_EXTRA_CA_CERTS unset (it makes each Node.js start read and
// parse the CA bundle). Each runtime has its own --root under bench/.work and unique
// container ids; leftovers are deleted at the end.
//
// crun on a hybrid cgroup host: crun refuses to run while a cgroup2 hierarchy is mounted
// at /sys/fs/cgroup/unified. We never unmount it on the host: crun is run by a helper
// (this script with --serve) that lives in its own private mount namespace, created once
// with `unshare -m --propagation private`, where /sys/fs/cgroup/unified is unmounted. The
// helper times each `crun run` itself, with the same code the main process uses for the
// other runtimes, so neither `unshare` nor the request round trip is in crun's numbers.
import { spawnSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync, accessSync, constants } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const WORK = join(REPO, 'bench', '.work');

function childEnv() {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

/** Runs cmd once and returns { ms, status, stderr }: wall time from spawn to exit. */
function timeOnce(cmd, args) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: childEnv(), encoding: 'utf8', timeout: 60_000 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return { ms, status: r.status ?? (r.signal ? `signal ${r.signal}` : 'error'), stderr: (r.stderr || r.error?.message || '').trim() };
}

// --- helper mode: one request per stdin line, one JSON reply per stdout line -----------
if (process.argv[2] === '--serve') {
  const rl = createInterface({ input: process.stdin });
  process.stdout.write(JSON.stringify({ ready: true }) + '\n');
  rl.on('line', line => {
    const { cmd, args } = JSON.parse(line);
    process.stdout.write(JSON.stringify(timeOnce(cmd, args)) + '\n');
  });
  rl.on('close', () => process.exit(0));
} else {
  await main();
}

function which(name) {
  if (name.includes('/')) { try { accessSync(name, constants.X_OK); return resolve(name); } catch { return null; } }
  for (const d of (process.env.PATH ?? '').split(':')) {
    if (!d) continue;
    try { accessSync(join(d, name), constants.X_OK); return join(d, name); } catch { /* next */ }
  }
  return null;
}

function parseArgs(argv) {
  const o = { rounds: 30, warmup: 3, only: ['tsrun', 'runc', 'crun', 'node'], json: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--rounds') o.rounds = Number(argv[++i]);
    else if (a === '--warmup') o.warmup = Number(argv[++i]);
    else if (a === '--only') o.only = argv[++i].split(',');
    else if (a === '--json') o.json = argv[++i];
    else if (a === '-h' || a === '--help') { console.log('usage: bench/startup.sh [--rounds N] [--warmup N] [--only tsrun,runc,crun,node] [--json FILE]'); process.exit(0); }
    else { console.error(`unknown option ${a}`); process.exit(2); }
  }
  return o;
}

/** The crun helper inside a private mount namespace without /sys/fs/cgroup/unified. */
async function startNsHelper() {
  const hybrid = spawnSync('findmnt', ['-n', '-t', 'cgroup2', '/sys/fs/cgroup/unified']).status === 0;
  const script = (hybrid ? 'umount /sys/fs/cgroup/unified && ' : '') + `exec "${process.execPath}" "${fileURLToPath(import.meta.url)}" --serve`;
  const child = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { stdio: ['pipe', 'pipe', 'inherit'], env: childEnv() });
  const rl = createInterface({ input: child.stdout });
  const queue = [];
  let exited = null;
  rl.on('line', l => queue.shift()?.res(JSON.parse(l)));
  child.on('exit', c => {
    exited = new Error(`crun helper (unshare -m) exited with status ${c}`);
    for (const w of queue.splice(0)) w.rej(exited);
  });
  const next = () => new Promise((res, rej) => (exited ? rej(exited) : queue.push({ res, rej })));
  await next(); // ready
  return {
    hybrid,
    time: (cmd, args) => { const p = next(); child.stdin.write(JSON.stringify({ cmd, args }) + '\n'); return p; },
    close: () => new Promise(r => { child.once('exit', r); child.stdin.end(); }),
  };
}

function quantile(sorted, q) {
  if (!sorted.length) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

function bundleConfig() {
  // Reuse the project's generator, then trim to the benchmark's shape.
  return import(join(REPO, 'scripts', 'example-bundle.mjs')).then(({ defaultSpec }) => {
    const c = defaultSpec({ args: ['/bin/true'], cgroupns: false, hostname: 'bench' });
    c.linux.namespaces = ['pid', 'ipc', 'uts', 'mount', 'network'].map(type => ({ type }));
    c.mounts = [{ destination: '/proc', type: 'proc', source: 'proc' }];
    delete c.linux.resources;
    delete c.linux.maskedPaths;
    delete c.linux.readonlyPaths;
    c.process.rlimits = [];
    return c;
  });
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) { console.error('bench/startup: run as root (containers need it)'); process.exit(1); }
  const wasSet = process.env.NODE_EXTRA_CA_CERTS || process.env.BENCH_NODE_EXTRA_CA_CERTS_WAS_SET;
  const envNote = `unset for every run${wasSet ? ' (it is set in the calling environment)' : ''}`;
  mkdirSync(WORK, { recursive: true });

  // Bundle: the test image (busybox + probe) and a trimmed config.
  const rootfs = join(WORK, 'bundle', 'rootfs');
  const mk = spawnSync(join(REPO, 'scripts', 'make-test-image.sh'), [rootfs], { stdio: 'inherit' });
  if (mk.status !== 0) { console.error('bench/startup: could not build the rootfs'); process.exit(1); }
  const bundle = join(WORK, 'bundle');
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(await bundleConfig(), null, 2));

  const tag = randomBytes(3).toString('hex');
  const runtimes = [];
  const skipped = [];
  const rootOf = name => { const d = join(WORK, `root-${name}-${tag}`); mkdirSync(d, { recursive: true }); return d; };
  let nsHelper = null;

  for (const name of o.only) {
    if (name === 'node') {
      runtimes.push({ name: 'node -e 0', key: 'node', cmd: process.execPath, args: () => ['-e', '0'] });
    } else if (name === 'tsrun') {
      const bin = which(process.env.TSRUN || join(REPO, 'bin', 'tsrun'));
      const works = args => spawnSync(bin, args, { env: childEnv(), stdio: 'ignore', timeout: 20_000 }).status === 0;
      const ok = bin && (works(['--version']) || works(['features']));
      if (!ok) { skipped.push(`tsrun: ${bin ? `${bin} --version/features failed` : 'bin/tsrun not found'} (not built yet?) - skipped`); continue; }
      const root = rootOf('tsrun');
      runtimes.push({ name: 'tsrun run', key: 'tsrun', cmd: bin, root, args: id => ['--root', root, 'run', '--bundle', bundle, id] });
    } else if (name === 'runc' || name === 'crun') {
      const bin = which(name);
      if (!bin) { skipped.push(`${name}: not installed - skipped`); continue; }
      const root = rootOf(name);
      const rt = { name: `${name} run`, key: name, cmd: bin, root, args: id => ['--root', root, 'run', '--bundle', bundle, id] };
      if (name === 'crun') {
        nsHelper ??= await startNsHelper();
        rt.viaHelper = true;
      }
      runtimes.push(rt);
    } else { console.error(`unknown runtime ${name}`); process.exit(2); }
  }

  console.log(`startup benchmark: ${o.rounds} rounds (+${o.warmup} warm-up), interleaved; process /bin/true`);
  console.log(`bundle: ${bundle} (namespaces pid,ipc,uts,mount,network; /proc; no limits)`);
  console.log(`NODE_EXTRA_CA_CERTS: ${envNote}`);
  if (nsHelper) console.log(`crun: timed inside a private mount namespace${nsHelper.hybrid ? ' where /sys/fs/cgroup/unified is unmounted (hybrid host)' : ''}; the namespace is set up once, outside the timings`);
  for (const s of skipped) console.log(s);

  const samples = Object.fromEntries(runtimes.map(r => [r.key, []]));
  const failures = Object.fromEntries(runtimes.map(r => [r.key, 0]));
  for (let round = 0; round < o.warmup + o.rounds; round++) {
    // Rotate the order each round so no runtime always goes first.
    const order = runtimes.map((_, i) => runtimes[(i + round) % runtimes.length]);
    for (const r of order) {
      const id = `b-${r.key}-${tag}-${round}`;
      const args = r.args(id);
      const res = r.viaHelper ? await nsHelper.time(r.cmd, args) : timeOnce(r.cmd, args);
      if (res.status !== 0) {
        failures[r.key]++;
        if (failures[r.key] <= 2) console.log(`  ${r.name} failed (round ${round}, status ${res.status}): ${res.stderr.split('\n')[0]}`);
        if (r.root) {
          const del = [r.cmd, ['--root', r.root, 'delete', '--force', id]];
          if (r.viaHelper) await nsHelper.time(...del); else timeOnce(...del);
        }
        continue;
      }
      if (round >= o.warmup) samples[r.key].push(res.ms);
    }
  }

  // Leftovers (a run that failed half-way), then the roots.
  for (const r of runtimes) {
    if (!r.root) continue;
    const l = spawnSync(r.cmd, ['--root', r.root, 'list', '-q'], { env: childEnv(), encoding: 'utf8' });
    for (const id of (l.stdout || '').split('\n').filter(Boolean)) {
      const del = [r.cmd, ['--root', r.root, 'delete', '--force', id]];
      if (r.viaHelper) await nsHelper.time(...del); else timeOnce(...del);
    }
    rmSync(r.root, { recursive: true, force: true });
  }
  if (nsHelper) await nsHelper.close();

  const stats = {};
  console.log('');
  console.log(`${'runtime'.padEnd(12)} ${'median'.padStart(9)} ${'p10'.padStart(9)} ${'p90'.padStart(9)} ${'n'.padStart(4)}  failed`);
  for (const r of runtimes) {
    const s = [...samples[r.key]].sort((a, b) => a - b);
    stats[r.key] = { median: quantile(s, 0.5), p10: quantile(s, 0.1), p90: quantile(s, 0.9), n: s.length, failed: failures[r.key] };
    const f = v => (Number.isNaN(v) ? '-' : v.toFixed(1)).padStart(9);
    console.log(`${r.name.padEnd(12)} ${f(stats[r.key].median)} ${f(stats[r.key].p10)} ${f(stats[r.key].p90)} ${String(s.length).padStart(4)}  ${failures[r.key]}`);
  }
  console.log('(milliseconds, wall clock from spawn to exit)');
  const ratio = (a, b) => (stats[a]?.n && stats[b]?.n ? (stats[a].median / stats[b].median).toFixed(2) + 'x' : 'n/a');
  console.log('');
  console.log(`tsrun/runc: ${ratio('tsrun', 'runc')}   tsrun/crun: ${ratio('tsrun', 'crun')}   (medians)`);
  if (o.json) writeFileSync(o.json, JSON.stringify({ rounds: o.rounds, warmup: o.warmup, stats, skipped }, null, 2) + '\n');
  if (Object.values(failures).some(n => n > 0)) process.exitCode = 1;
}
