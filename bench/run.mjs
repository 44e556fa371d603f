#!/usr/bin/env node
// Engine benchmark: `tsrun run --rm IMAGE true` vs `podman run --rm IMAGE true` and `docker run
// --rm IMAGE true` (a private dockerd started for the run when docker.io is installed), on the
// same busybox image, interleaved round by round; then a detached container's lifecycle (`run -d`,
// `stop -t 0`, `rm`, each timed); then density: the PSS of the per-container
// supervisor (tsrun-supervisor vs podman's conmon vs docker's containerd-shim) for N idle
// detached containers (`sleep 1000`).
//
// usage: bench/run.sh [--rounds 20] [--warmup 3] [--containers 5] [--only startup,lifecycle,density]
//                     [--json FILE] [--keep-work]
//   env TSRUN=path   the tsrun binary (default <repo>/bin/tsrun)
//
// Every child runs with NODE_EXTRA_CA_CERTS unset. Everything lives in one temp dir
// (mkdtemp /tmp/tsrun-bench-*): tsrun's --root, podman's --root/--runroot/--tmpdir, the image
// tarball. Containers and images are removed at the end and the temp dir is deleted.
//
// podman on a hybrid cgroup host: podman/crun refuse to run while cgroup2 is mounted at
// /sys/fs/cgroup/unified. Nothing is unmounted on the host: podman runs through a helper (this
// bench/peers.mjs with --serve) started once with `unshare -m -p -f --propagation private --mount-proc`;
// in that private mount namespace /sys/fs/cgroup/unified is unmounted and tmpfs is mounted over
// /run/containers, /var/lib/containers and /run/crun (so podman's network/IPAM state, blob-info
// cache and crun's state stay out of the host's directories). The helper times each podman run
// itself (same code as for tsrun), so neither `unshare` nor the request round trip is in
// podman's numbers. The new PID namespace's init is a shell that reaps conmon's orphans (this
// machine's PID 1 does not reap). podman's cgroups go under a parent named for this run
// (--cgroup-parent /tsrun-bench-<tag>), removed (rmdir, v1 hierarchies) at the end.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { REPO, childEnv, timeOnce, memOf, which, setupReaper, reapZombies, startNsHelper, parentOf, startDockerd, quantile, hardLimit, rmCgroupTree } from './peers.mjs';

function parseArgs(argv) {
  const o = { rounds: 20, warmup: 3, containers: 5, only: ['startup', 'lifecycle', 'density'], json: null, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--rounds') o.rounds = Number(argv[++i]);
    else if (a === '--warmup') o.warmup = Number(argv[++i]);
    else if (a === '--containers') o.containers = Number(argv[++i]);
    else if (a === '--only') o.only = argv[++i].split(',');
    else if (a === '--json') o.json = argv[++i];
    else if (a === '--keep-work') o.keep = true;
    else if (a === '-h' || a === '--help') { console.log('usage: bench/run.sh [--rounds N] [--warmup N] [--containers N] [--only startup,lifecycle,density] [--json FILE] [--keep-work]'); process.exit(0); }
    else { console.error(`unknown option ${a}`); process.exit(2); }
  }
  return o;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) { console.error('bench/run: run as root (containers need it)'); process.exit(1); }
  const wasSet = process.env.NODE_EXTRA_CA_CERTS || process.env.BENCH_NODE_EXTRA_CA_CERTS_WAS_SET;
  const reaper = setupReaper();
  const tag = randomBytes(3).toString('hex');
  const WORK = mkdtempSync('/tmp/tsrun-bench-');
  const IMAGE = 'bench/bb:1';
  const notes = [];
  const result = { rounds: o.rounds, warmup: o.warmup, startup: null, lifecycle: null, density: null, notes };
  let nsHelper = null;
  const cleanups = [];

  const bin = which(process.env.TSRUN || join(REPO, 'bin', 'tsrun'));
  const tsOk = bin && spawnSync(bin, ['--version'], { env: childEnv(), stdio: 'ignore', timeout: 20_000 }).status === 0;
  if (!tsOk) { console.error(`bench/run: ${bin ? `${bin} --version failed` : 'bin/tsrun not found'} (not built yet?)`); process.exit(1); }
  const R = join(WORK, 'tsrun');
  const ts = (...a) => timeOnce(bin, ['--root', R, ...a], true);

  try {
    // Image: the test rootfs (busybox + probe) as a one-layer tarball.
    const rootfs = join(REPO, 'test', '.images', 'busybox', 'rootfs');
    if (spawnSync(join(REPO, 'scripts', 'make-test-image.sh'), [rootfs], { stdio: 'inherit' }).status !== 0) throw new Error('could not build the rootfs');
    const tarball = join(WORK, 'bb.tar');
    if (spawnSync('tar', ['-C', rootfs, '-cf', tarball, '.'], { stdio: 'inherit' }).status !== 0) throw new Error('tar failed');
    let r = ts('import', tarball, IMAGE);
    if (r.status !== 0) throw new Error(`tsrun import: ${r.stderr}`);

    // podman (through the namespace helper)
    let podman = null;
    const podmanBin = which('podman');
    if (!podmanBin) notes.push('podman: not installed - skipped');
    else {
      nsHelper = await startNsHelper();
      const cgParent = `/tsrun-bench-${tag}`;
      const base = ['--root', join(WORK, 'podman-root'), '--runroot', join(WORK, 'podman-run'), '--tmpdir', join(WORK, 'podman-tmp'),
        '--cgroup-manager', 'cgroupfs', '--events-backend', 'none', '--storage-driver', 'overlay'];
      const runFlags = ['--network', 'none', '--cgroup-parent', cgParent];
      podman = { cmd: podmanBin, base, runFlags, cgParent };
      cleanups.push(() => rmCgroupTree(cgParent)); // podman's cgroups for this run
      r = await nsHelper.time(podmanBin, [...base, 'import', tarball, IMAGE], true);
      if (r.status !== 0) { notes.push(`podman import failed: ${r.stderr.split('\n').pop()} - podman skipped`); podman = null; }
      else {
        // Probe one run; where crun may not raise rlimits (no CAP_SYS_RESOURCE, as in some
        // sandboxes), podman's root defaults (nofile/nproc 1048576) fail: pin them then.
        r = await nsHelper.time(podmanBin, [...base, 'run', '--rm', ...runFlags, IMAGE, 'true']);
        if (r.status !== 0 && /setrlimit/.test(r.stderr)) {
          const nofile = hardLimit('Max open files');
          podman.runFlags.push('--ulimit', `nofile=${nofile}:${nofile}`, '--ulimit', 'nproc=4096:4096');
          notes.push(`podman: crun could not set podman's default rlimits (${r.stderr.split('\n')[0]}); using --ulimit nofile=${nofile}:${nofile} --ulimit nproc=4096:4096`);
          r = await nsHelper.time(podmanBin, [...base, 'run', '--rm', ...podman.runFlags, IMAGE, 'true']);
        }
        if (r.status !== 0) { notes.push(`podman run failed (${r.stderr.split('\n')[0]}) - podman skipped`); podman = null; }
      }
      if (podman) cleanups.unshift(async () => {
        const l = await nsHelper.time(podmanBin, [...base, 'rm', '-f', '-a'], true);
        if (l.status !== 0) console.log(`podman rm -f -a: ${l.stderr}`);
        await nsHelper.time(podmanBin, [...base, 'rmi', '-f', '-a'], true);
      });
    }

    // docker: a private dockerd (Debian's docker.io) started for this run in a network
    // namespace made for it (no bridge, no iptables), with its own data/exec roots and socket
    // under WORK and its cgroups under /tsrun-bench-docker-<tag>; stopped and removed at the end.
    let docker = null;
    const dockerd = which('dockerd'), dockerCli = which('docker');
    if (!dockerd || !dockerCli) notes.push(`docker: ${dockerd ? 'no docker client' : 'dockerd not installed (apt-get install docker.io)'} - skipped`);
    else {
      try {
        const dk = await startDockerd(dockerd, dockerCli, WORK, tag);
        cleanups.push(() => dk.stop());
        const dimg = `tsrun-bench/bb:${tag}`;
        r = timeOnce(dockerCli, [...dk.args, 'import', tarball, dimg], true);
        if (r.status !== 0) notes.push(`docker import failed: ${r.stderr} - skipped`);
        else {
          r = timeOnce(dockerCli, [...dk.args, 'run', '--rm', '--network', 'none', dimg, 'true']);
          if (r.status !== 0) notes.push(`docker run failed (${r.stderr.split('\n')[0]}) - skipped`);
          else docker = { cmd: dockerCli, args: dk.args, image: dimg, version: dk.version };
        }
      } catch (e) { notes.push(`docker: ${e.message} - skipped`); }
    }

    console.log(`tsrun engine benchmark (temp dir ${WORK})`);
    console.log(`image: ${IMAGE} = test/.images/busybox/rootfs as one layer (tsrun import / podman import)`);
    console.log(`NODE_EXTRA_CA_CERTS: unset for every run${wasSet ? ' (it is set in the calling environment)' : ''}`);
    if (podman) console.log(`podman: ${podman.runFlags.join(' ')}; ${podman.base.slice(6).join(' ')}; own --root/--runroot/--tmpdir;\n        run in a private mount+PID namespace${nsHelper.hybrid ? ' where /sys/fs/cgroup/unified is unmounted (hybrid host)' : ''}, set up once outside the timings`);
    console.log('tsrun: run --network none (a network namespace with only lo, up), as podman and docker here; bench/net.sh measures the bridge');
    if (docker) console.log(`docker: dockerd ${docker.version}, private daemon in its own network namespace (--bridge none --iptables=false), cgroupfs driver, overlay2; run --network none`);
    if (!reaper) console.log('note: could not become a child subreaper (koffi); exited supervisors may stay zombies under PID 1');
    for (const n of notes) console.log(n);

    // ---------------------------------------------------------------- start-up
    if (o.only.includes('startup')) {
      const engines = [{ key: 'tsrun', name: 'tsrun run', run: () => timeOnce(bin, ['--root', R, 'run', '--rm', '--network', 'none', IMAGE, 'true']) }];
      if (podman) engines.push({ key: 'podman', name: 'podman run', run: () => nsHelper.time(podman.cmd, [...podman.base, 'run', '--rm', ...podman.runFlags, IMAGE, 'true']) });
      if (docker) engines.push({ key: 'docker', name: 'docker run', run: () => timeOnce(docker.cmd, [...docker.args, 'run', '--rm', '--network', 'none', docker.image, 'true']) });
      const samples = Object.fromEntries(engines.map(e => [e.key, []]));
      const failures = Object.fromEntries(engines.map(e => [e.key, 0]));
      console.log(`\nstart-up: ${o.rounds} rounds (+${o.warmup} warm-up), interleaved, rotating order; \`run --rm ${IMAGE} true\``);
      for (let round = 0; round < o.warmup + o.rounds; round++) {
        const order = engines.map((_, i) => engines[(i + round) % engines.length]);
        for (const e of order) {
          const res = await e.run();
          if (res.status !== 0) {
            if (++failures[e.key] <= 2) console.log(`  ${e.name} failed (round ${round}, status ${res.status}): ${res.stderr.split('\n')[0]}`);
            continue;
          }
          if (round >= o.warmup) samples[e.key].push(res.ms);
        }
        reapZombies(new Set([nsHelper?.pid]));
      }
      const stats = {};
      console.log(`\n${'engine'.padEnd(12)} ${'median'.padStart(9)} ${'p10'.padStart(9)} ${'p90'.padStart(9)} ${'n'.padStart(4)}  failed`);
      for (const e of engines) {
        const s = [...samples[e.key]].sort((a, b) => a - b);
        stats[e.key] = { median: quantile(s, 0.5), p10: quantile(s, 0.1), p90: quantile(s, 0.9), n: s.length, failed: failures[e.key] };
        const f = v => (Number.isNaN(v) ? '-' : v.toFixed(1)).padStart(9);
        console.log(`${e.name.padEnd(12)} ${f(stats[e.key].median)} ${f(stats[e.key].p10)} ${f(stats[e.key].p90)} ${String(s.length).padStart(4)}  ${failures[e.key]}`);
      }
      console.log('(milliseconds, wall clock from spawn to exit)\n');
      const ratio = (a, b, target) => {
        if (!stats[a]?.n || !stats[b]?.n) return `tsrun/${b}: n/a (${b} not run)`;
        const v = stats[a].median / stats[b].median;
        return `tsrun/${b}: ${v.toFixed(2)}x (target <= ${target}: ${v <= target ? 'met' : 'NOT met'})`;
      };
      console.log(`${ratio('tsrun', 'podman', 0.5)}   ${ratio('tsrun', 'docker', 0.4)}   (medians)`);
      result.startup = stats;
      if (Object.values(failures).some(n => n > 0)) process.exitCode = 1;
    }

    // ---------------------------------------------------------------- lifecycle
    // a detached container's life as a user times it: `run -d` (returns once it runs), `stop -t 0`
    // (returns once it is stopped and cleaned up), `rm`; interleaved, rotating order
    if (o.only.includes('lifecycle')) {
      const kinds = ['run -d', 'stop -t 0', 'rm'];
      const engines = [{ key: 'tsrun', name: 'tsrun', step: (k, id) => timeOnce(bin, ['--root', R, ...(k === 'run -d' ? ['run', '-d', '--network', 'none', IMAGE, 'sleep', '1000'] : k === 'rm' ? ['rm', id] : ['stop', '-t', '0', id])], true) }];
      if (podman) engines.push({ key: 'podman', name: 'podman', step: (k, id) => nsHelper.time(podman.cmd, [...podman.base, ...(k === 'run -d' ? ['run', '-d', ...podman.runFlags, IMAGE, 'sleep', '1000'] : k === 'rm' ? ['rm', id] : ['stop', '-t', '0', id])], true) });
      if (docker) engines.push({ key: 'docker', name: 'docker', step: (k, id) => timeOnce(docker.cmd, [...docker.args, ...(k === 'run -d' ? ['run', '-d', '--network', 'none', docker.image, 'sleep', '1000'] : k === 'rm' ? ['rm', id] : ['stop', '-t', '0', id])], true) });
      const samples = Object.fromEntries(engines.map(e => [e.key, Object.fromEntries(kinds.map(k => [k, []]))]));
      let failed = 0;
      console.log(`\nlifecycle: ${o.rounds} rounds (+${o.warmup} warm-up), interleaved; \`run -d ${IMAGE} sleep 1000\`, \`stop -t 0\`, \`rm\``);
      for (let round = 0; round < o.warmup + o.rounds; round++) {
        for (const e of engines.map((_, i) => engines[(i + round) % engines.length])) {
          let id = null;
          for (const k of kinds) {
            const res = await e.step(k, id);
            if (res.status !== 0) { if (++failed <= 3) console.log(`  ${e.name} ${k} failed: ${res.stderr.split('\n')[0]}`); break; }
            if (k === 'run -d') id = res.stdout.trim().split('\n').pop();
            if (round >= o.warmup) samples[e.key][k].push(res.ms);
          }
        }
        reapZombies(new Set([nsHelper?.pid]));
      }
      const med = a => quantile([...a].sort((x, y) => x - y), 0.5);
      console.log(`\n${'engine'.padEnd(8)} ${kinds.map(k => k.padStart(10)).join(' ')}   (medians, ms)`);
      for (const e of engines) console.log(`${e.name.padEnd(8)} ${kinds.map(k => (samples[e.key][k].length ? med(samples[e.key][k]).toFixed(1) : '-').padStart(10)).join(' ')}`);
      for (const peer of engines.slice(1)) console.log(`tsrun/${peer.key}: ${kinds.map(k => `${k} ${(med(samples.tsrun[k]) / med(samples[peer.key][k])).toFixed(2)}x`).join('   ')}`);
      result.lifecycle = Object.fromEntries(engines.map(e => [e.key, Object.fromEntries(kinds.map(k => [k, med(samples[e.key][k])]))]));
      if (failed) process.exitCode = 1;
    }

    // ---------------------------------------------------------------- density
    if (o.only.includes('density')) {
      const N = o.containers;
      console.log(`\ndensity: ${N} detached idle containers each (\`run -d ${IMAGE} sleep 1000\`), PSS of the per-container supervisor`);
      const dens = {};
      // tsrun
      const ids = [];
      const tsm = [];
      for (let i = 0; i < N; i++) {
        r = ts('run', '-d', '--network', 'none', IMAGE, 'sleep', '1000');
        if (r.status !== 0) { console.log(`  tsrun run -d failed: ${r.stderr.split('\n')[0]}`); continue; }
        ids.push(r.stdout.trim().split('\n').pop());
      }
      await new Promise(res => setTimeout(res, 1000)); // let every supervisor settle
      for (const id of ids) {
        let pid = null;
        try { pid = Number(readFileSync(join(R, 'containers', id, 'supervisor.pid'), 'utf8').trim()); } catch { /* */ }
        const m = pid && memOf(pid);
        if (m) tsm.push(m); else console.log(`  tsrun ${id.slice(0, 12)}: no supervisor found`);
      }
      for (const id of ids) { const x = ts('rm', '-f', id); if (x.status !== 0) console.log(`  tsrun rm -f ${id.slice(0, 12)}: ${x.stderr}`); }
      reapZombies(new Set([nsHelper?.pid]));
      const avg = (a, k) => (a.length ? a.reduce((s, m) => s + m[k], 0) / a.length : NaN);
      dens.tsrun = { name: 'tsrun-supervisor', n: tsm.length, pss: avg(tsm, 'pss'), rss: avg(tsm, 'rss'), each: tsm.map(m => m.pss), target: 200 };
      // podman
      if (podman) {
        const pids = [];
        const pm = [];
        for (let i = 0; i < N; i++) {
          r = await nsHelper.time(podman.cmd, [...podman.base, 'run', '-d', ...podman.runFlags, IMAGE, 'sleep', '1000'], true);
          if (r.status !== 0) { console.log(`  podman run -d failed: ${r.stderr.split('\n')[0]}`); continue; }
          pids.push(r.stdout.trim().split('\n').pop());
        }
        await new Promise(res => setTimeout(res, 1000));
        for (const id of pids) {
          const x = await nsHelper.time(podman.cmd, [...podman.base, 'inspect', '--format', '{{.State.ConmonPid}}', id], true);
          const m = x.status === 0 ? await nsHelper.mem(Number(x.stdout.trim())) : null;
          if (m) pm.push(m); else console.log(`  podman ${id.slice(0, 12)}: no conmon found`);
        }
        for (const id of pids) { const x = await nsHelper.time(podman.cmd, [...podman.base, 'rm', '-f', '-t', '0', id], true); if (x.status !== 0) console.log(`  podman rm -f ${id.slice(0, 12)}: ${x.stderr}`); }
        dens.podman = { name: 'conmon (podman)', n: pm.length, pss: avg(pm, 'pss'), rss: avg(pm, 'rss'), each: pm.map(m => m.pss) };
      }
      if (docker) {
        const cids = [];
        const dm = [];
        for (let i = 0; i < N; i++) {
          r = timeOnce(docker.cmd, [...docker.args, 'run', '-d', '--network', 'none', docker.image, 'sleep', '1000'], true);
          if (r.status !== 0) { console.log(`  docker run -d failed: ${r.stderr.split('\n')[0]}`); continue; }
          cids.push(r.stdout.trim().split('\n').pop());
        }
        await new Promise(res => setTimeout(res, 1000));
        for (const id of cids) {
          // The container's parent is its containerd-shim-runc-v2 (docker's per-container supervisor).
          const x = timeOnce(docker.cmd, [...docker.args, 'inspect', '--format', '{{.State.Pid}}', id], true);
          const ppid = x.status === 0 ? parentOf(Number(x.stdout.trim())) : null;
          const m = ppid && memOf(ppid);
          if (m) dm.push(m); else console.log(`  docker ${id.slice(0, 12)}: no shim found`);
        }
        if (cids.length) timeOnce(docker.cmd, [...docker.args, 'rm', '-f', ...cids]);
        dens.docker = { name: 'containerd-shim (docker)', n: dm.length, pss: avg(dm, 'pss'), rss: avg(dm, 'rss'), each: dm.map(m => m.pss) };
      }
      console.log(`\n${'supervisor'.padEnd(24)} ${'PSS avg'.padStart(8)} ${'RSS avg'.padStart(8)} ${'n'.padStart(3)}  PSS each (KiB)`);
      for (const d of Object.values(dens)) {
        const f = v => (Number.isNaN(v) ? '-' : v.toFixed(0)).padStart(8);
        console.log(`${d.name.padEnd(24)} ${f(d.pss)} ${f(d.rss)} ${String(d.n).padStart(3)}  ${d.each.join(' ')}`);
      }
      console.log('(KiB, from /proc/PID/smaps_rollup)');
      if (dens.tsrun.n) console.log(`\ntsrun-supervisor PSS: ${dens.tsrun.pss.toFixed(0)} KiB (target <= 200: ${dens.tsrun.pss <= 200 ? 'met' : 'NOT met'})${dens.podman?.n ? `   tsrun/conmon: ${(dens.tsrun.pss / dens.podman.pss).toFixed(2)}x` : ''}${dens.docker?.n ? `   tsrun/containerd-shim: ${(dens.tsrun.pss / dens.docker.pss).toFixed(2)}x` : ''}`);
      result.density = dens;
      if (dens.tsrun.n !== N) process.exitCode = 1;
    }
  } catch (e) {
    console.error(`bench/run: ${e.message}`);
    process.exitCode = 1;
  } finally {
    // Leftovers: tsrun containers and images, podman's, docker's; then the temp dir.
    const l = ts('ps', '-a', '-q');
    for (const id of (l.stdout || '').split('\n').filter(Boolean)) ts('rm', '-f', id);
    ts('rmi', IMAGE);
    for (const c of cleanups) { try { await c(); } catch (e) { console.log(`cleanup: ${e.message}`); } }
    if (nsHelper) await nsHelper.close();
    reapZombies();
    if (o.json) writeFileSync(o.json, JSON.stringify(result, null, 2) + '\n');
    if (o.keep) console.log(`kept ${WORK}`);
    else {
      // podman's overlay mounts lived in the helper's namespace, gone with it.
      const rm = spawnSync('rm', ['-rf', '--one-file-system', WORK], { encoding: 'utf8' });
      if (rm.status !== 0) console.log(`could not remove ${WORK}: ${rm.stderr.trim()}`);
    }
  }
}

await main();
