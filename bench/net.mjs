// bench/net.sh runs this inside a throwaway network namespace (tsrun's). It makes one more for
// podman (its helper runs under `nsenter --net`, so netavark's bridge, iptables rules and
// ip_forward are made there) and one for a private dockerd (with its docker0 and iptables).
//   1. start-up: `run --rm IMAGE true` with tsrun --network none / bridge / bridge -p, podman
//      (--network bridge, its default) and docker (default bridge), interleaved round by round;
//   2. throughput: a TCP stream (bench/tcpblast.c, in the image as /tcpblast) between two
//      containers on one bridge: tsrun's default bridge (MTU 1500), a tsrun network made with
//      -o com.docker.network.driver.mtu=65000, podman's and docker's bridges; against the same
//      stream over a container's loopback (both ends in one container). busybox nc is checked on
//      the loopback once, to show why it is not the tool (it copies through a small buffer).
import { spawnSync } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mkdirSync } from 'node:fs';
import { childEnv, timeOnce, which, setupReaper, reapZombies, startNsHelper, startDockerd, addNetns, rmCgroupTree, quantile, hardLimit } from './peers.mjs';

const args = process.argv.slice(2);
const opt = (k, d) => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : d; };
const root = opt('--root'), image = opt('--image'), tarball = opt('--tarball'), work = opt('--work'), tag = opt('--tag');
const rounds = Number(opt('--rounds', '30')), streams = Number(opt('--streams', '3')), mib = Number(opt('--mib', '1024'));
const only = opt('--only', 'startup,throughput').split(',');
const noPeers = args.includes('--no-peers');
const tsrun = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'tsrun');
const traceEnv = { ...childEnv(), TSRUN_TRACE: '1' };
const out = (s = '') => process.stdout.write(s + '\n');
const first = (s) => (s || '').trim().split('\n')[0];

// TSRUN_TRACE marks around the network's work inside tsrun: less noisy than wall clock on a busy box
const netMs = (stderr) => {
  let sum = 0, open;
  for (const m of stderr.matchAll(/\[trace ([\d.]+) ms\] network: (attach|attached|detach|detached)\n/g)) {
    if (m[2] === 'attach' || m[2] === 'detach') open = Number(m[1]);
    else if (open !== undefined) { sum += Number(m[1]) - open; open = undefined; }
  }
  return sum;
};
const tsTimed = (a) => {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(tsrun, ['--root', root, ...a], { env: traceEnv, encoding: 'utf8', timeout: 120_000 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return { ms, status: r.status ?? 'signal', stderr: r.stderr || '', net: netMs(r.stderr || '') };
};
const ts = (...a) => timeOnce(tsrun, ['--root', root, ...a], true);

setupReaper();
const cleanups = [];
let helper = null;
try {
  // ------------------------------------------------------------------ peers
  let podman = null, docker = null;
  const notes = [];
  if (!noPeers) {
    const podmanBin = which('podman');
    if (!podmanBin) notes.push('podman: not installed - skipped');
    else {
      const ns = `tsrun-bench-podman-${tag}`;
      const netns = addNetns(ns);
      cleanups.push(() => spawnSync('ip', ['netns', 'del', ns]));
      helper = await startNsHelper({ netns });
      const cgParent = `/tsrun-bench-${tag}`;
      cleanups.push(() => rmCgroupTree(cgParent));
      mkdirSync(join(work, 'podman-net'), { recursive: true });
      const base = ['--root', join(work, 'podman-root'), '--runroot', join(work, 'podman-run'), '--tmpdir', join(work, 'podman-tmp'),
        '--network-config-dir', join(work, 'podman-net'), '--cgroup-manager', 'cgroupfs', '--events-backend', 'none', '--storage-driver', 'overlay'];
      const runFlags = ['--network', 'bridge', '--cgroup-parent', cgParent];
      const p = { cmd: podmanBin, base, runFlags, t: (...a) => helper.time(podmanBin, [...base, ...a], true) };
      let r = await p.t('import', tarball, image);
      if (r.status !== 0) notes.push(`podman import failed: ${first(r.stderr)} - skipped`);
      else {
        cleanups.unshift(async () => { await p.t('rm', '-f', '-a', '-t', '0'); await p.t('rmi', '-f', '-a'); });
        r = await p.t('run', '--rm', ...runFlags, image, 'true');
        if (r.status !== 0 && /setrlimit/.test(r.stderr)) {
          const nofile = hardLimit('Max open files');
          runFlags.push('--ulimit', `nofile=${nofile}:${nofile}`, '--ulimit', 'nproc=4096:4096');
          notes.push(`podman: crun could not set podman's default rlimits; using --ulimit nofile=${nofile}:${nofile} --ulimit nproc=4096:4096`);
          r = await p.t('run', '--rm', ...runFlags, image, 'true');
        }
        if (r.status !== 0) notes.push(`podman run failed (${first(r.stderr)}) - skipped`);
        else podman = p;
      }
    }
    const dockerd = which('dockerd'), cli = which('docker');
    if (!dockerd || !cli) notes.push('docker: not installed - skipped');
    else {
      try {
        const dk = await startDockerd(dockerd, cli, work, tag, { bridge: true });
        cleanups.push(() => dk.stop());
        const dimg = `tsrun-bench/bb:${tag}`;
        const d = { cmd: cli, image: dimg, version: dk.version, t: (...a) => timeOnce(cli, [...dk.args, ...a], true) };
        let r = d.t('import', tarball, dimg);
        if (r.status !== 0) notes.push(`docker import failed: ${first(r.stderr)} - skipped`);
        else {
          r = d.t('run', '--rm', dimg, 'true');
          if (r.status !== 0) notes.push(`docker run failed (${first(r.stderr)}) - skipped`);
          else docker = d;
        }
      } catch (e) { notes.push(`docker: ${e.message} - skipped`); }
    }
  }
  out(`image: busybox test rootfs + /tcpblast, one layer; tsrun, podman and docker each in a network namespace made for this run`);
  if (podman) out(`podman: run --rm ${podman.runFlags.join(' ')} (netavark bridge, MTU 1500); cgroupfs, overlay; private mount+PID namespace`);
  if (docker) out(`docker: dockerd ${docker.version}, private, default bridge (docker0, iptables, MTU 1500), cgroupfs, overlay2, --userland-proxy=false`);
  for (const n of notes) out(n);

  // ------------------------------------------------------------------ start-up
  if (only.includes('startup')) {
    const variants = {
      'tsrun none': () => tsTimed(['run', '--rm', '--network', 'none', image, 'true']),
      'tsrun bridge': () => tsTimed(['run', '--rm', '--network', 'bridge', image, 'true']),
      'tsrun bridge -p': () => tsTimed(['run', '--rm', '--network', 'bridge', '-p', '8080:80', image, 'true']),
    };
    if (podman) variants['podman bridge'] = () => helper.time(podman.cmd, [...podman.base, 'run', '--rm', ...podman.runFlags, image, 'true']);
    if (docker) variants['docker bridge'] = () => { const r = docker.t('run', '--rm', docker.image, 'true'); return r; };
    const names = Object.keys(variants);
    const times = Object.fromEntries(names.map((k) => [k, []]));
    const phase = { 'tsrun bridge': [], 'tsrun bridge -p': [] };
    const failed = Object.fromEntries(names.map((k) => [k, 0]));
    out(`\nstart-up: ${rounds} rounds (+3 warm-up), interleaved, rotating order; \`run --rm IMAGE true\``);
    for (let i = -3; i < rounds; i++) {
      for (let k = 0; k < names.length; k++) {
        const name = names[((i + 3) + k) % names.length];
        const r = await variants[name]();
        if (r.status !== 0) { if (++failed[name] <= 2) out(`  ${name}: exit ${r.status}: ${first(r.stderr)}`); continue; }
        if (i < 0) continue;
        times[name].push(r.ms);
        if (phase[name]) phase[name].push(r.net);
      }
      reapZombies(new Set([helper?.pid]));
    }
    const med = {};
    out(`\n${'variant'.padEnd(26)} ${'median'.padStart(8)} ${'p10'.padStart(8)} ${'p90'.padStart(8)} ${'n'.padStart(4)}  failed`);
    for (const n of names) {
      const s = [...times[n]].sort((a, b) => a - b);
      med[n] = quantile(s, 0.5);
      out(`run --rm ${n.padEnd(17)} ${quantile(s, 0.5).toFixed(1).padStart(8)} ${quantile(s, 0.1).toFixed(1).padStart(8)} ${quantile(s, 0.9).toFixed(1).padStart(8)} ${String(s.length).padStart(4)}  ${failed[n]}`);
    }
    out('(milliseconds, wall clock from spawn to exit)');
    for (const n of Object.keys(phase)) { const s = [...phase[n]].sort((a, b) => a - b); out(`inside tsrun, network attach + detach (${n}): median ${quantile(s, 0.5).toFixed(1)} ms, p10 ${quantile(s, 0.1).toFixed(1)}, p90 ${quantile(s, 0.9).toFixed(1)}`); }
    const d = med['tsrun bridge'] - med['tsrun none'], dp = med['tsrun bridge -p'] - med['tsrun none'];
    out(`tsrun bridge - none: ${d.toFixed(1)} ms (target <= 15: ${d <= 15 ? 'met' : 'NOT met'})   bridge -p - none: ${dp.toFixed(1)} ms`);
    if (podman) { const v = med['tsrun bridge'] / med['podman bridge']; out(`tsrun bridge / podman bridge: ${v.toFixed(2)}x (target <= 0.4: ${v <= 0.4 ? 'met' : 'NOT met'})`); }
    if (docker) out(`tsrun bridge / docker bridge: ${(med['tsrun bridge'] / med['docker bridge']).toFixed(2)}x`);
  }

  // ------------------------------------------------------------------ throughput
  if (only.includes('throughput')) {
    const jumbo = `bench-mtu65000-${tag}`;
    let r = ts('network', 'create', '-o', 'com.docker.network.driver.mtu=65000', jumbo);
    if (r.status !== 0) throw new Error(`tsrun network create: ${r.stderr}`);
    cleanups.unshift(() => ts('network', 'rm', jumbo));
    const ipFmt = '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}';
    const parse = (s) => { const m = /(\d+) ([\d.]+) ([\d.]+)\s*$/.exec(s || ''); return m ? Number(m[3]) : NaN; };
    // one stream: a sink container (-d), then a client container (--rm) that prints its MB/s
    const pair = async (run, inspect, rm, net, img = image) => {
      const s = await run(['-d', ...net, img, '/tcpblast', '-l', '5000']);
      if (s.status !== 0) return { err: `sink: ${first(s.stderr)}` };
      const id = s.stdout.trim().split('\n').pop();
      try {
        const ip = (await inspect(id)).stdout.trim().split(/\s+/)[0];
        if (!ip) return { err: 'no IP address' };
        const c = await run(['--rm', ...net, img, '/tcpblast', ip, '5000', String(mib)]);
        if (c.status !== 0) return { err: `client: ${first(c.stderr)}` };
        return { mbs: parse(c.stdout) };
      } finally { await rm(id); }
    };
    const tsRun = (a) => ts('run', ...a);
    const cases = {
      // on the default bridge: tsrun's --network none leaves lo down (docker's brings it up)
      'loopback, one container': async () => {
        const c = ts('run', '--rm', image, 'sh', '-c', `/tcpblast -l 5000 2>/dev/null & /tcpblast 127.0.0.1 5000 ${mib}`);
        return c.status === 0 ? { mbs: parse(c.stdout) } : { err: first(c.stderr) };
      },
      'tsrun bridge, MTU 1500': () => pair(tsRun, (id) => ts('inspect', '--format', ipFmt, id), (id) => ts('rm', '-f', id), []),
      'tsrun net, MTU 65000': () => pair(tsRun, (id) => ts('inspect', '--format', ipFmt, id), (id) => ts('rm', '-f', id), ['--network', jumbo]),
    };
    if (podman) cases['podman bridge, MTU 1500'] = () => pair((a) => podman.t('run', ...a.slice(0, 1), ...podman.runFlags, ...a.slice(1)),
      (id) => podman.t('inspect', '--format', ipFmt, id), (id) => podman.t('rm', '-f', '-t', '0', id), []);
    if (docker) cases['docker bridge, MTU 1500'] = () => pair((a) => docker.t('run', ...a), (id) => docker.t('inspect', '--format', ipFmt, id), (id) => docker.t('rm', '-f', id), [], docker.image);
    const names = Object.keys(cases);
    const res = Object.fromEntries(names.map((k) => [k, []]));
    out(`\nthroughput: ${streams} rounds, interleaved, rotating order; one TCP stream of ${mib} MiB each (tcpblast, 256 KiB writes), timed by the client from connect to the sink's close`);
    for (let i = 0; i < streams; i++) {
      for (let k = 0; k < names.length; k++) {
        const name = names[(i + k) % names.length];
        const r = await cases[name]();
        if (r.err || Number.isNaN(r.mbs)) out(`  ${name}: ${r.err ?? 'no result'}`); else res[name].push(r.mbs);
      }
      reapZombies(new Set([helper?.pid]));
    }
    // the check: busybox nc over the same loopback (the sink's stdin is a pipe kept open: nc
    // ends a connection when its own stdin ends)
    const ncMib = Math.min(mib, 512);
    const nc = ts('run', '--rm', image, 'sh', '-c',
      `sleep 600 | nc -l -p 5000 >/dev/null & sleep 0.3; time sh -c "dd if=/dev/zero bs=64k count=${ncMib * 16} 2>/dev/null | nc 127.0.0.1 5000"`);
    const ncT = /real\s+(\d+)m\s*([\d.]+)s/.exec(nc.stderr || '');
    const ncMbs = ncT ? (ncMib * 1048576) / (Number(ncT[1]) * 60 + Number(ncT[2])) / 1e6 : NaN;
    const lo = quantile([...res['loopback, one container']].sort((a, b) => a - b), 0.5);
    out(`\n${'stream'.padEnd(28)} ${'MB/s'.padStart(8)} ${'min'.padStart(8)} ${'max'.padStart(8)}  % of loopback`);
    const med = {};
    for (const n of names) {
      const s = [...res[n]].sort((a, b) => a - b);
      med[n] = quantile(s, 0.5);
      out(`${n.padEnd(28)} ${med[n].toFixed(0).padStart(8)} ${(s[0] ?? NaN).toFixed(0).padStart(8)} ${(s[s.length - 1] ?? NaN).toFixed(0).padStart(8)}  ${(100 * med[n] / lo).toFixed(0).padStart(5)}%`);
    }
    out(`${'busybox nc, loopback (check)'.padEnd(28)} ${ncMbs.toFixed(0).padStart(8)} ${''.padStart(8)} ${''.padStart(8)}  ${(100 * ncMbs / lo).toFixed(0).padStart(5)}%   (${ncMib} MiB, once)`);
    out('(MB/s = 10^6 bytes per second; medians)');
    const t = med['tsrun bridge, MTU 1500'];
    for (const peer of ['podman bridge, MTU 1500', 'docker bridge, MTU 1500']) if (med[peer]) out(`tsrun bridge / ${peer.split(',')[0]}: ${(t / med[peer]).toFixed(2)}x (target >= 1: ${t >= med[peer] ? 'met' : 'NOT met'})`);
    const j = 100 * med['tsrun net, MTU 65000'] / lo;
    out(`tsrun MTU 65000: ${j.toFixed(0)}% of loopback (target ~90-107%)`);
  }
} catch (e) {
  process.stderr.write(`bench/net: ${e.stack || e.message}\n`);
  process.exitCode = 1;
} finally {
  const l = ts('ps', '-a', '-q');
  for (const id of (l.stdout || '').split('\n').filter(Boolean)) ts('rm', '-f', id);
  for (const c of cleanups) { try { await c(); } catch (e) { out(`cleanup: ${e.message}`); } }
  if (helper) await helper.close();
  reapZombies();
}
