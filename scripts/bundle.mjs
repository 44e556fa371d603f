// Builds the CLI:
//  - dist/tsrun.js: every module bundled into one CommonJS file (no ESM, no node_modules on the
//    start path; commands are required lazily inside it);
//  - bin/tsrun: a 1 KB loader that runs it with a V8 code cache (dist/tsrun.js.cache), so that
//    start-up skips parsing and compiling (measured: ~5 ms of a ~50 ms `tsrun run`);
//  - the cache, written by running the loader on a sample bundle (`run --dry-run`, and a real
//    `run` of /bin/true from a private copy of a few host binaries when we are root), and for the
//    engine's, an image run and a pull from a throwaway registry (see trainPull);
//  - dist/pull-worker.js: the pull's worker threads.
import { build } from 'esbuild';
import { chmodSync, readFileSync, writeFileSync, rmSync, mkdirSync, mkdtempSync, copyFileSync, existsSync } from 'fs';
import { spawn, spawnSync } from 'child_process';
import { createServer } from 'http';
import { createHash } from 'crypto';
import { gzipSync } from 'zlib';
import { tmpdir } from 'os';
import path from 'path';

// Two bundles: the runtime's hot path (main.ts: run -b, create, start, exec, state, kill, delete...)
// and the engine (images, docker-style containers, doctor), loaded only by the commands that need
// it: a smaller script and code cache for the path whose start-up we race runc on.
const common = { bundle: true, platform: 'node', target: 'node20', format: 'cjs', external: ['*.node', 'koffi'], logLevel: 'warning' };
await build({ ...common, entryPoints: ['src/cli/main.ts'], outfile: 'dist/tsrun.js' });
await build({ ...common, entryPoints: ['src/cli/engine.ts'], outfile: 'dist/engine.js' });
// pull's worker threads (src/image/pull.ts: found next to engine.js)
await build({ ...common, entryPoints: ['src/image/pull-worker.ts'], outfile: 'dist/pull-worker.js', external: [...common.external, 'tar'] });
// bin/tsrun reads the bundles as latin1: exact for ASCII, and V8 keeps a one-byte string (a
// non-ASCII byte, e.g. "µ" in a regex literal, which esbuild leaves as is, made the engine's
// source two-byte: +2.5 ms to read, check the cache and run it). Keep them ASCII.
for (const f of ['dist/tsrun.js', 'dist/engine.js', 'dist/pull-worker.js']) {
  const b = readFileSync(f);
  const i = b.findIndex((x) => x > 127);
  if (i >= 0) throw new Error(`${f}: a non-ASCII byte at offset ${i} (near ${JSON.stringify(b.subarray(Math.max(0, i - 40), i + 10).toString('utf8'))}): write it as a \\u escape in the source`);
}

mkdirSync('bin', { recursive: true });
writeFileSync('bin/tsrun', `#!/usr/bin/env -S node --
'use strict';
// tsrun's entry: runs dist/tsrun.js (and, for the engine's commands, dist/engine.js) with the V8 code
// caches made at build time (see scripts/bundle.mjs).
const fs = require('fs'), path = require('path'), vm = require('vm'), Module = require('module');
const dist = path.join(fs.realpathSync(__dirname), '..', 'dist');
const write = process.env.TSRUN_WRITE_CODE_CACHE;
const saves = [];
function load(file) {
  let cachedData;
  try { cachedData = fs.readFileSync(file + '.cache'); } catch { /* no cache: compile */ }
  const script = new vm.Script(Module.wrap(fs.readFileSync(file, 'latin1')), { filename: file, cachedData });
  if (write && path.basename(file).startsWith(write)) saves.push(() => fs.writeFileSync(file + '.cache', script.createCachedData()));
  const m = { exports: {} };
  script.runInThisContext()(m.exports, require, m, file, path.dirname(file));
  return m.exports;
}
globalThis.__tsrunRequire = load;
if (write) globalThis.__tsrunSaveCodeCache = () => saves.forEach((f) => f());
load(path.join(dist, 'tsrun.js'));
`);
chmodSync('bin/tsrun', 0o755);
rmSync('dist/tsrun.js.cache', { force: true });
rmSync('dist/engine.js.cache', { force: true });

/**
 * `tsrun pull` from a throwaway registry in this process (plain HTTP on 127.0.0.1: the manifest
 * and blob endpoints of the distribution API, nothing else) of a one-layer image made from the
 * training rootfs plus a symlink and a hard link, so the engine's cache covers the registry
 * client, the layer pipeline and the unpacker. Failures only cost the cache its pull path.
 */
async function trainPull(tarFile, root, env) {
  const sha = (b) => 'sha256:' + createHash('sha256').update(b).digest('hex');
  const dir = mkdtempSync(path.join(tmpdir(), 'tsrun-build-pull-'));
  const server = createServer();
  try {
    mkdirSync(path.join(dir, 'etc'));
    writeFileSync(path.join(dir, 'etc', 'hostname'), 'tsrun\n');
    spawnSync('ln', ['-s', 'hostname', path.join(dir, 'etc', 'name')]);
    spawnSync('ln', [path.join(dir, 'etc', 'hostname'), path.join(dir, 'etc', 'hard')]);
    const extra = path.join(dir, 'extra.tar');
    if (spawnSync('tar', ['-C', dir, '-cf', extra, 'etc']).status !== 0) return;
    const tar = Buffer.concat([readFileSync(tarFile).subarray(0, -1024), readFileSync(extra)]);
    const layer = gzipSync(tar, { level: 1 });
    const config = Buffer.from(JSON.stringify({ architecture: process.arch === 'x64' ? 'amd64' : process.arch, os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [sha(tar)] } }));
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(layer), size: layer.length }],
    }));
    const blobs = new Map([[sha(config), config], [sha(layer), layer]]);
    server.on('request', (req, res) => {
      const m = /^\/v2\/tsrun-build\/pull\/(manifests|blobs)\/([^/?]+)$/.exec(req.url ?? '');
      const body = m?.[1] === 'manifests' ? manifest : m ? blobs.get(m[2]) : undefined;
      if (!body) { res.writeHead(404).end(); return; }
      res.writeHead(200, { 'Content-Type': m[1] === 'manifests' ? 'application/vnd.oci.image.manifest.v1+json' : 'application/octet-stream',
        'Content-Length': body.length, 'Docker-Content-Digest': m[1] === 'manifests' ? sha(manifest) : m[2] });
      res.end(body);
    });
    await new Promise((resolve, reject) => server.listen(0, '127.0.0.1', resolve).on('error', reject));
    const ref = `127.0.0.1:${server.address().port}/tsrun-build/pull:1`;
    const child = spawn('bin/tsrun', ['--root', root, 'pull', '-q', ref], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c) => { err += c; });
    const status = await new Promise((resolve) => child.on('close', resolve));
    if (status !== 0) process.stderr.write(`bundle: training pull failed (${err.trim()}); the cache covers less of pull\n`);
  } catch (e) {
    process.stderr.write(`bundle: training pull: ${e.message}\n`);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// Train the cache.
const tmp = mkdtempSync(path.join(tmpdir(), 'tsrun-build-'));
try {
  const bundle = path.join(tmp, 'bundle');
  mkdirSync(path.join(bundle, 'rootfs', 'bin'), { recursive: true });
  const env = { ...process.env, TSRUN_WRITE_CODE_CACHE: 'tsrun' };
  delete env.NODE_EXTRA_CA_CERTS;
  const tsrun = (args) => spawnSync('bin/tsrun', ['--root', path.join(tmp, 'state'), ...args], { env, encoding: 'utf8' });
  tsrun(['spec', '--bundle', bundle]);
  const cfgPath = path.join(bundle, 'config.json');
  const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
  cfg.process.terminal = false;
  cfg.process.args = ['/bin/true'];
  writeFileSync(cfgPath, JSON.stringify(cfg));
  let trained = false;
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
  if (process.getuid?.() === 0 && busybox) {
    copyFileSync(busybox, path.join(bundle, 'rootfs', 'bin', 'true'));
    chmodSync(path.join(bundle, 'rootfs', 'bin', 'true'), 0o755);
    const r = tsrun(['run', '--bundle', bundle, 'tsrun-build-' + process.pid]);
    trained = r.status === 0;
    if (!trained) process.stderr.write(`bundle: training run failed (${r.stderr.trim()}); the cache covers the plan only\n`);
  }
  if (!trained) tsrun(['run', '--dry-run', '--bundle', bundle]);
  // the engine's cache: an image from that rootfs, run once (or, without root, listing commands)
  const envE = { ...env, TSRUN_WRITE_CODE_CACHE: 'engine' };
  const tsrunE = (args) => spawnSync('bin/tsrun', ['--root', path.join(tmp, 'state'), ...args], { env: envE, encoding: 'utf8' });
  let engineTrained = false;
  if (trained) {
    const tarFile = path.join(tmp, 'rootfs.tar');
    if (spawnSync('tar', ['-C', path.join(bundle, 'rootfs'), '-cf', tarFile, '.']).status === 0
      && spawnSync('bin/tsrun', ['--root', path.join(tmp, 'state'), 'import', tarFile, 'tsrun-build/true:1'], { env: { ...env, TSRUN_WRITE_CODE_CACHE: '' } }).status === 0) {
      // --network none: the build must not make a bridge or firewall rules in the host's namespace
      engineTrained = tsrunE(['run', '--rm', '--network', 'none', 'tsrun-build/true:1', '/bin/true']).status === 0;
    }
  }
  if (!engineTrained) tsrunE(['images']);
  // then a pull: it loads the cache the run wrote and adds its own functions to it
  if (engineTrained) await trainPull(path.join(tmp, 'rootfs.tar'), path.join(tmp, 'state'), envE);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
for (const f of ['dist/tsrun.js.cache', 'dist/engine.js.cache']) {
  if (!existsSync(f)) process.stderr.write(`bundle: no code cache ${f} was written; tsrun works, it starts a few ms slower\n`);
}
