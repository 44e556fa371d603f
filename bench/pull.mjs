#!/usr/bin/env node
// Pull benchmark: tsrun vs skopeo vs podman, pulling from a local docker-registry
// (Debian's distribution 2.8 on 127.0.0.1, plain HTTP).
//
// Images (made here, pushed with skopeo):
//   small  the busybox test rootfs in one gzip layer (~1.4 MB blob, 2.8 MB unpacked)
//   large  8 layers of incompressible files (random bytes, gzip -1), ~200 MB in all
//
// Contenders, interleaved round by round (rotating order), each on a fresh store every round:
//   tsrun   `bin/tsrun --root R pull -q REF` when `bin/tsrun pull --help` works; otherwise a
//           node process running pullImage (src/image/pull.ts bundled with esbuild into
//           bench/.work/pull-lib.cjs) on a fresh store root: download + verify + unpack.
//   skopeo  `skopeo copy docker://REF oci:DIR:x`: download + verify, no unpacking.
//   podman  `podman --root R --runroot R2 pull REF` (overlay driver): download + unpack into
//           its layer store. Skipped with a message when its first pull fails.
// Every child runs with NODE_EXTRA_CA_CERTS unset. Prints median / p10 / p90 (ms), MB/s for the
// large image, and the ratios against the targets: small: tsrun <= 1.5x skopeo and <= 0.3x
// podman; large: tsrun's throughput >= skopeo's.
//
// usage: bench/pull.sh [--rounds 10] [--large-rounds 5] [--only tsrun,skopeo,podman]
//                      [--images small,large] [--mode cli|lib] [--src DIR] [--work DIR] [--json FILE] [--keep]
//                      [--also NAME=BIN,...]   (more tsrun builds, e.g. before=/tmp/old/bin/tsrun)
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRegistry, makeLayer, addImage, skopeoPush, TEST_ROOTFS, tmpDir } from '../test/helpers/registry.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : def; };
const ROUNDS = Number(opt('rounds', 10));
const LARGE_ROUNDS = Number(opt('large-rounds', 5));
const ONLY = opt('only', 'tsrun,skopeo,podman').split(',');
const IMAGES = opt('images', 'small,large').split(',');
const JSON_OUT = opt('json', undefined);
const KEEP = args.includes('--keep');
// Where the stores go (every tool alike); --work /dev/shm/x takes the disk's inode creation
// cost (0.3-0.9 ms per file or symlink on this VM's ext4) out of the comparison.
const WORK = path.resolve(opt('work', path.join(REPO, 'bench', '.work', 'pull')));
// --src DIR: bundle src/image from another checkout (lib mode), to measure a change side by side.
const SRC = path.resolve(opt('src', REPO));

function childEnv() {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

function run(cmd, argv, timeout = 600_000) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'], env: childEnv(), encoding: 'utf8', timeout, maxBuffer: 1 << 24 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return { ms, ok: r.status === 0, err: (r.stderr || r.error?.message || `status ${r.status} signal ${r.signal}`).trim().split('\n').slice(-3).join(' | ') };
}

const rm = (p) => fs.rmSync(p, { recursive: true, force: true });

// --- tsrun: the CLI when it has `pull`, else a node script over the bundled library -----
async function tsrunCommand() {
  const bin = process.env.TSRUN || path.join(REPO, 'bin', 'tsrun');
  const mode = opt('mode', undefined);
  if (mode !== 'lib' && fs.existsSync(bin) && spawnSync(bin, ['pull', '--help'], { stdio: 'ignore', env: childEnv() }).status === 0) {
    return { how: `${path.relative(REPO, bin) || bin} pull`, cmd: (root, ref) => [bin, ['--root', root, 'pull', '-q', ref]] };
  }
  if (mode === 'cli') throw new Error(`${bin} has no pull command`);
  const { build } = await import('esbuild');
  const libDir = path.join(REPO, 'bench', '.work');  // inside the repo: the bundle finds node_modules
  fs.mkdirSync(libDir, { recursive: true });
  const lib = path.join(libDir, 'pull-lib.cjs');
  await build({
    stdin: {
      contents: "export { pullImage } from './src/image/pull'; export { parseRef } from './src/image/ref'; export { ImageStore } from './src/image/store';",
      resolveDir: SRC, loader: 'ts', sourcefile: 'pull-lib.ts',
    },
    bundle: true, platform: 'node', target: 'node20', format: 'cjs', outfile: lib, minify: false,
    external: ['*.node', 'koffi'], logLevel: 'error',
    define: { __dirname: JSON.stringify(path.join(REPO, 'dist')) }, nodePaths: [path.join(REPO, 'node_modules')],
  });
  const runner = path.join(libDir, 'pull-one.cjs');
  fs.writeFileSync(runner, `'use strict';
const lib = require(${JSON.stringify(lib)});
lib.pullImage(new lib.ImageStore(process.argv[2]), lib.parseRef(process.argv[3]))
  .then(() => process.exit(0), (e) => { process.stderr.write(e.message + '\\n'); process.exit(1); });
`);
  return { how: `node + pullImage (${path.relative(REPO, SRC) ? SRC + '/' : ''}src/image bundled)`, cmd: (root, ref) => [process.execPath, [runner, root, ref]] };
}

// --- images -----------------------------------------------------------------------------
function makeImages(reg) {
  const out = {};
  const layouts = tmpDir('tsrun-bench-layouts-');
  if (IMAGES.includes('small')) {
    const dir = path.join(layouts, 'small');
    const im = addImage(dir, { layers: [makeLayer({ dir: TEST_ROOTFS })], tag: 'v1' });
    skopeoPush(dir, 'v1', `${reg.host}/bench/small:1`);
    out.small = { ref: `${reg.host}/bench/small:1`, bytes: im.layers.reduce((n, l) => n + l.size, 0), layers: 1 };
  }
  if (IMAGES.includes('large')) {
    const dir = path.join(layouts, 'large');
    // 8 layers x 25 MB: a few files of random bytes each (incompressible), gzip level 1.
    const layers = [];
    for (let i = 0; i < 8; i++) {
      const files = {};
      for (let f = 0; f < 5; f++) files[`data/l${i}/f${f}.bin`] = randomBytes(5 << 20);
      files[`etc/layer${i}`] = `layer ${i}\n`;
      layers.push(makeLayer({ files }, { level: 1 }));
    }
    const im = addImage(dir, { layers, tag: 'v1' });
    skopeoPush(dir, 'v1', `${reg.host}/bench/large:1`);
    out.large = { ref: `${reg.host}/bench/large:1`, bytes: im.layers.reduce((n, l) => n + l.size, 0), layers: 8 };
  }
  rm(layouts);
  return out;
}


// --- stats ------------------------------------------------------------------------------
function pct(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
  const i = (s.length - 1) * p;
  const lo = Math.floor(i), hi = Math.ceil(i);
  return s[lo] + (s[hi] - s[lo]) * (i - lo);
}

async function main() {
  if (process.getuid?.() !== 0) console.error('bench/pull: not root: tsrun unpacks as root (chown, mknod); expect failures');
  rm(WORK);
  fs.mkdirSync(WORK, { recursive: true });
  const reg = await startRegistry({ name: 'bench-registry' });
  const results = {};
  try {
    console.log(`registry: docker-registry on ${reg.host}; stores under ${WORK}; making images (${IMAGES.join(', ')})...`);
    const images = makeImages(reg);
    const tools = {};
    if (ONLY.includes('tsrun')) {
      const t = await tsrunCommand();
      tools.tsrun = { how: t.how, cmd: t.cmd };
    }
    // --also NAME=BIN[,NAME2=BIN2]: other tsrun builds (another checkout's bin/tsrun), timed
    // the same way, interleaved with the rest: a before/after comparison in one run.
    for (const spec of (opt('also', '') || '').split(',').filter(Boolean)) {
      const [name, bin] = spec.split('=');
      const abs = path.resolve(bin);
      tools[name] = { how: `${abs} pull`, cmd: (root, ref) => [abs, ['--root', root, 'pull', '-q', ref]] };
    }
    if (ONLY.includes('skopeo')) {
      tools.skopeo = { how: 'skopeo copy docker:// oci:', cmd: (root, ref) => ['skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${ref}`, `oci:${root}:x`]] };
    }
    if (ONLY.includes('podman')) {
      tools.podman = {
        how: 'podman pull (overlay)',
        cmd: (root, ref) => ['podman', ['--root', path.join(root, 'root'), '--runroot', path.join(root, 'run'), '--storage-driver', 'overlay', '--cgroup-manager', 'cgroupfs', '--events-backend', 'none', 'pull', '-q', '--tls-verify=false', ref]],
        cleanup: (root) => {
          // podman's overlay store may leave mounts (none for a pull, but be safe) before rm.
          spawnSync('podman', ['--root', path.join(root, 'root'), '--runroot', path.join(root, 'run'), '--storage-driver', 'overlay', 'system', 'reset', '-f'], { stdio: 'ignore', env: childEnv() });
        },
      };
    }
    for (const [name, t] of Object.entries(tools)) console.log(`  ${name.padEnd(7)} ${t.how}`);

    for (const [imgName, im] of Object.entries(images)) {
      const rounds = imgName === 'large' ? LARGE_ROUNDS : ROUNDS;
      const times = Object.fromEntries(Object.keys(tools).map((k) => [k, []]));
      const failed = Object.fromEntries(Object.keys(tools).map((k) => [k, 0]));
      const skip = new Set();
      const roots = [];
      console.log(`\n${imgName}: ${im.ref}, ${im.layers} layer(s), ${(im.bytes / 1e6).toFixed(1)} MB of blobs; ${rounds} rounds + 1 warm-up`);
      const names = Object.keys(tools);
      for (let r = -1; r < rounds; r++) {
        const order = names.map((_, i) => names[(i + Math.max(r, 0)) % names.length]);
        for (const name of order) {
          if (skip.has(name)) continue;
          const t = tools[name];
          const root = path.join(WORK, `${name}-${imgName}-${r + 1}`);
          rm(root);
          fs.mkdirSync(root, { recursive: true });
          const [cmd, argv] = t.cmd(root, im.ref);
          // Flush what the previous run left dirty, so that its writeback is not timed here.
          spawnSync('sync');
          const res = run(cmd, argv);
          if (!res.ok) {
            if (r === -1 || failed[name] >= 2) { console.log(`  ${name}: failed, skipped: ${res.err}`); skip.add(name); }
            failed[name]++;
          } else if (r >= 0) times[name].push(res.ms);
          t.cleanup?.(root);
          roots.push(root);
        }
      }
      // Stores are deleted only now: on this VM's ext4 (mounted with online discard) deleting
      // between runs slows the file creations of the next run.
      if (!KEEP) for (const root of roots.splice(0)) rm(root);
      console.log(`  ${'tool'.padEnd(8)} ${'median'.padStart(9)} ${'p10'.padStart(9)} ${'p90'.padStart(9)} ${imgName === 'large' ? '    MB/s' : ''}   n  failed`);
      const med = {};
      for (const name of names) {
        const xs = times[name];
        med[name] = pct(xs, 0.5);
        const mbs = imgName === 'large' ? `${(im.bytes / 1e6 / (med[name] / 1000)).toFixed(0).padStart(8)}` : '';
        console.log(`  ${name.padEnd(8)} ${med[name].toFixed(1).padStart(9)} ${pct(xs, 0.1).toFixed(1).padStart(9)} ${pct(xs, 0.9).toFixed(1).padStart(9)} ${mbs} ${String(xs.length).padStart(3)}  ${failed[name]}`);
      }
      const ratio = (a, b) => (med[a] / med[b]);
      const lines = [];
      if (med.tsrun && med.skopeo) lines.push(`tsrun/skopeo ${ratio('tsrun', 'skopeo').toFixed(2)}x${imgName === 'small' ? ' (target <= 1.5)' : ' (target <= 1.0: throughput >= skopeo)'}`);
      if (med.tsrun && med.podman) lines.push(`tsrun/podman ${ratio('tsrun', 'podman').toFixed(2)}x${imgName === 'small' ? ' (target <= 0.3)' : ''}`);
      for (const name of names) if (!['tsrun', 'skopeo', 'podman'].includes(name) && med.tsrun && med[name]) lines.push(`tsrun/${name} ${ratio('tsrun', name).toFixed(2)}x`);
      console.log(`  (ms, wall clock from spawn to exit)  ${lines.join('   ')}`);
      results[imgName] = { ref: im.ref, bytes: im.bytes, rounds, times, medians: med, failed };
    }
  } finally {
    await reg.stop();
    rm(reg.dir);
    if (!KEEP) rm(WORK);
  }
  if (JSON_OUT) fs.writeFileSync(JSON_OUT, JSON.stringify(results, null, 2));
}

await main();
