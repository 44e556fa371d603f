// Test helpers for the image registry client (test/registry.test.mjs):
//  - startRegistry(): Debian's docker-registry (distribution 2.8) on 127.0.0.1:<free port>,
//    its storage in a temp dir, optionally with htpasswd (bcrypt) auth; stop() kills it by pid;
//  - makeOciLayout(): writes an OCI image layout (tar + gzip of directories or file maps,
//    config, manifest, index.json; several platforms make an index) that skopeo copies;
//  - skopeo(): runs skopeo with TLS verification off for 127.0.0.1;
//  - loadImageLib(): bundles src/image (pull, push, ref, registry, store) with esbuild into
//    a CommonJS file and loads it, so the tests call pullImage/pushImage directly.
import { spawn, execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';
import { REPO } from './runtime.mjs';

export const REGISTRY_BIN = process.env.TSRUN_TEST_REGISTRY || '/usr/bin/docker-registry';
export const TEST_ROOTFS = process.env.TSRUN_TEST_IMAGE || path.join(REPO, 'test', '.images', 'busybox', 'rootfs');

export const MT = {
  OCI_INDEX: 'application/vnd.oci.image.index.v1+json',
  OCI_MANIFEST: 'application/vnd.oci.image.manifest.v1+json',
  OCI_CONFIG: 'application/vnd.oci.image.config.v1+json',
  OCI_LAYER_GZIP: 'application/vnd.oci.image.layer.v1.tar+gzip',
  DOCKER_MANIFEST: 'application/vnd.docker.distribution.manifest.v2+json',
  DOCKER_CONFIG: 'application/vnd.docker.container.image.v1+json',
  DOCKER_LAYER_GZIP: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
};

export const sha256 = (buf) => 'sha256:' + createHash('sha256').update(buf).digest('hex');

const madeDirs = [];
/** A new temp dir (under TSRUN_TEST_TMP when set); removeTmpDirs() deletes them all. */
export function tmpDir(prefix = 'tsrun-reg-') {
  const base = process.env.TSRUN_TEST_TMP || os.tmpdir();
  const d = fs.mkdtempSync(path.join(base, prefix));
  madeDirs.push(d);
  return d;
}

export function removeTmpDirs() {
  for (const d of madeDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

/** A free TCP port on 127.0.0.1 (bound, read, released). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

function httpGet(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
  });
}

/** A bcrypt htpasswd line for user:pass (htpasswd from apache2-utils). */
export function htpasswdLine(user, pass) {
  const r = spawnSync('htpasswd', ['-Bbn', user, pass], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`htpasswd failed (apt-get install apache2-utils): ${r.stderr || r.error}`);
  return r.stdout.trim() + '\n';
}

/**
 * Starts docker-registry. Options: { htpasswd: {user, pass} }.
 * Returns { host: '127.0.0.1:PORT', port, dir, storage, log(), stop() }.
 */
export async function startRegistry({ htpasswd, name = 'registry' } = {}) {
  if (!fs.existsSync(REGISTRY_BIN)) throw new Error(`${REGISTRY_BIN} not found: apt-get install docker-registry`);
  const dir = tmpDir(`tsrun-${name}-`);
  const storage = path.join(dir, 'storage');
  fs.mkdirSync(storage);
  let lastErr;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    let auth = '';
    if (htpasswd) {
      fs.writeFileSync(path.join(dir, 'htpasswd'), htpasswdLine(htpasswd.user, htpasswd.pass));
      auth = `auth:\n  htpasswd:\n    realm: tsrun-test\n    path: ${path.join(dir, 'htpasswd')}\n`;
    }
    const cfg = `version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: ${storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:${port}
  secret: ${randomBytes(16).toString('hex')}
${auth}`;
    fs.writeFileSync(path.join(dir, 'config.yml'), cfg);
    const logFile = path.join(dir, `registry-${port}.log`);
    const out = fs.openSync(logFile, 'a');
    const child = spawn(REGISTRY_BIN, ['serve', path.join(dir, 'config.yml')], { stdio: ['ignore', out, out], detached: false });
    fs.closeSync(out);
    let exited = false;
    child.on('exit', () => { exited = true; });
    const url = `http://127.0.0.1:${port}/v2/`;
    const end = Date.now() + 10_000;
    let up = false;
    while (Date.now() < end && !exited) {
      try { const r = await httpGet(url); if (r.status === 200 || r.status === 401) { up = true; break; } } catch { /* not yet */ }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (up) {
      const reg = {
        host: `127.0.0.1:${port}`, port, dir, storage, pid: child.pid,
        log: () => fs.readFileSync(logFile, 'utf8'),
        /** Access-log lines ("POST /v2/x/blobs/uploads/?mount=..." 201) since `from` (a length of log()). */
        access: (from = 0) => fs.readFileSync(logFile, 'utf8').slice(from).split('\n').filter((l) => /"(GET|HEAD|POST|PUT|PATCH|DELETE) \/v2\//.test(l)),
        async stop() {
          if (exited) return;
          const gone = new Promise((r) => child.once('exit', r));
          try { process.kill(child.pid, 'SIGTERM'); } catch { return; }
          const t = setTimeout(() => { try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } }, 3000);
          await gone;
          clearTimeout(t);
        },
        /** The file holding a blob in the registry's storage. */
        blobFile: (digest) => path.join(storage, 'docker', 'registry', 'v2', 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7), 'data'),
      };
      return reg;
    }
    lastErr = new Error(`docker-registry did not come up on port ${port}:\n${fs.readFileSync(logFile, 'utf8').slice(-2000)}`);
    try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ }
  }
  throw lastErr;
}

/** skopeo with the given args; throws with its stderr on failure. */
export function skopeo(args, { input } = {}) {
  const r = spawnSync('skopeo', args, { encoding: 'utf8', input, timeout: 120_000, env: { ...process.env, NODE_EXTRA_CA_CERTS: undefined } });
  if (r.status !== 0) throw new Error(`skopeo ${args.join(' ')} failed: ${r.stderr || r.error}`);
  return r.stdout;
}

/** Pushes an OCI layout ref to the registry with skopeo (creds "user:pass" optional); --all for indexes. */
export function skopeoPush(layoutDir, tag, dest, { creds, all = false } = {}) {
  const args = ['copy', '--quiet', '--dest-tls-verify=false'];
  if (all) args.push('--all');
  if (creds) args.push('--dest-creds', creds);
  args.push(`oci:${layoutDir}:${tag}`, `docker://${dest}`);
  skopeo(args);
}

/** skopeo inspect of docker://ref: { Digest, Layers, ... } (raw: the manifest bytes). */
export function skopeoInspect(ref, { raw = false, creds } = {}) {
  const args = ['inspect', '--tls-verify=false'];
  if (raw) args.push('--raw');
  if (creds) args.push('--creds', creds);
  args.push(`docker://${ref}`);
  const out = skopeo(args);
  return raw ? out : JSON.parse(out);
}

/** A tar (GNU format, sorted, mtime 0, root-owned) of the entries of `dir`. */
export function tarDir(dir) {
  const entries = fs.readdirSync(dir).sort();
  if (entries.length === 0) return Buffer.alloc(1024);
  return execFileSync('tar', ['-C', dir, '--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '--format=gnu', '-cf', '-', ...entries], { maxBuffer: 1 << 30 });
}

/**
 * Writes a directory tree from a map: { 'a/b.txt': 'text' | Buffer, 'dir/': null (a directory),
 * 'ln': { symlink: 'target' } }.
 */
export function writeTree(dir, files) {
  for (const [p, v] of Object.entries(files)) {
    const f = path.join(dir, p);
    if (p.endsWith('/') || v === null) { fs.mkdirSync(f, { recursive: true }); continue; }
    fs.mkdirSync(path.dirname(f), { recursive: true });
    if (v && typeof v === 'object' && !Buffer.isBuffer(v) && v.symlink) fs.symlinkSync(v.symlink, f);
    else fs.writeFileSync(f, v);
  }
}

/**
 * Builds a layer blob from { dir } or { files } (see writeTree). Returns
 * { blob, digest, diffId, size, mediaType }.
 */
export function makeLayer(spec, { mediaType = MT.OCI_LAYER_GZIP, level = 6 } = {}) {
  let tar;
  if (spec.dir) tar = tarDir(spec.dir);
  else {
    const d = tmpDir('tsrun-layer-');
    try { writeTree(d, spec.files); tar = tarDir(d); } finally { fs.rmSync(d, { recursive: true, force: true }); }
  }
  const blob = zlib.gzipSync(tar, { level });
  return { blob, digest: sha256(blob), diffId: sha256(tar), size: blob.length, mediaType, tarSize: tar.length };
}

function writeBlob(layout, buf) {
  const d = sha256(buf);
  const f = path.join(layout, 'blobs', 'sha256', d.slice(7));
  fs.mkdirSync(path.dirname(f), { recursive: true });
  if (!fs.existsSync(f)) fs.writeFileSync(f, buf);
  return { digest: d, size: buf.length };
}

/**
 * Writes one image into an OCI layout (created if needed) and returns
 * { manifest, manifestDigest, manifestBytes, config, configDigest, layers }.
 * opts: { layers: [makeLayer() results], platform: {os, architecture, variant}, docker: bool (Docker
 * v2 media types), cmd, tag (index.json ref name; omit for images that only an index refers to) }.
 */
export function addImage(layout, { layers, platform = { os: 'linux', architecture: 'amd64' }, docker = false, cmd = ['/bin/sh'], tag, created = '2024-01-02T03:04:05Z' }) {
  fs.mkdirSync(path.join(layout, 'blobs', 'sha256'), { recursive: true });
  fs.writeFileSync(path.join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const config = {
    created, architecture: platform.architecture, os: platform.os, ...(platform.variant ? { variant: platform.variant } : {}),
    config: { Cmd: cmd, Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((_, i) => ({ created, created_by: `layer ${i}` })),
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const cfg = writeBlob(layout, configBytes);
  for (const l of layers) writeBlob(layout, l.blob);
  const manifest = {
    schemaVersion: 2,
    mediaType: docker ? MT.DOCKER_MANIFEST : MT.OCI_MANIFEST,
    config: { mediaType: docker ? MT.DOCKER_CONFIG : MT.OCI_CONFIG, digest: cfg.digest, size: cfg.size },
    layers: layers.map((l) => ({ mediaType: docker ? MT.DOCKER_LAYER_GZIP : l.mediaType, digest: l.digest, size: l.size })),
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const man = writeBlob(layout, manifestBytes);
  // (index.json says OCI even for a Docker manifest: skopeo's layout reader looks for OCI types
  // there, then goes by the manifest's own mediaType.)
  if (tag) addIndexEntry(layout, { mediaType: MT.OCI_MANIFEST, digest: man.digest, size: man.size, annotations: { 'org.opencontainers.image.ref.name': tag } });
  return { manifest, manifestBytes, manifestDigest: man.digest, config, configDigest: cfg.digest, layers, platform };
}

function addIndexEntry(layout, desc) {
  const f = path.join(layout, 'index.json');
  const idx = fs.existsSync(f) ? JSON.parse(fs.readFileSync(f, 'utf8')) : { schemaVersion: 2, mediaType: MT.OCI_INDEX, manifests: [] };
  const name = desc.annotations?.['org.opencontainers.image.ref.name'];
  idx.manifests = idx.manifests.filter((m) => m.annotations?.['org.opencontainers.image.ref.name'] !== name);
  idx.manifests.push(desc);
  fs.writeFileSync(f, JSON.stringify(idx));
}

/** Adds a multi-platform index (of images made by addImage without a tag) under `tag`. */
export function addIndex(layout, tag, images) {
  const index = {
    schemaVersion: 2,
    mediaType: MT.OCI_INDEX,
    manifests: images.map((im) => ({ mediaType: im.manifest.mediaType, digest: im.manifestDigest, size: im.manifestBytes.length, platform: im.platform })),
  };
  const bytes = Buffer.from(JSON.stringify(index));
  const d = writeBlob(layout, bytes);
  addIndexEntry(layout, { mediaType: MT.OCI_INDEX, digest: d.digest, size: d.size, annotations: { 'org.opencontainers.image.ref.name': tag } });
  return { index, indexDigest: d.digest, bytes };
}

/** Files of an OCI layout's blobs dir: digest -> size. */
export function layoutBlobs(layout) {
  const dir = path.join(layout, 'blobs', 'sha256');
  return Object.fromEntries(fs.readdirSync(dir).map((f) => [`sha256:${f}`, fs.statSync(path.join(dir, f)).size]));
}

let lib;
/**
 * The image library (src/image/{pull,push,ref,registry,store}) bundled with esbuild and loaded:
 * { pullImage, pushImage, parseRef, formatRef, familiarRef, repoName, registry: {...}, ImageStore, ... }.
 */
export async function loadImageLib() {
  if (lib) return lib;
  const { build } = await import('esbuild');
  const out = path.join(tmpDir('tsrun-imagelib-'), 'image-lib.cjs');
  await build({
    stdin: {
      contents: `
        export { pullImage } from './src/image/pull';
        export { pushImage } from './src/image/push';
        export * from './src/image/ref';
        export * as registry from './src/image/registry';
        export { ImageStore, ContentStore, LayerStore } from './src/image/store';
      `,
      resolveDir: REPO, loader: 'ts', sourcefile: 'image-lib.ts',
    },
    bundle: true, platform: 'node', target: 'node20', format: 'cjs', outfile: out,
    external: ['*.node', 'koffi'], logLevel: 'error', sourcemap: 'inline',
    // src/kernel/native.ts finds node_modules/koffi and native/build relative to the bundle's dir
    // (dist/ in the real build): the bundle lives elsewhere, so point it at the repo.
    define: { __dirname: JSON.stringify(path.join(REPO, 'dist')) },
    nodePaths: [path.join(REPO, 'node_modules')],
  });
  lib = createRequire(import.meta.url)(out);
  return lib;
}

/** Runs fn with env vars set (restored after, even on failure). */
export async function withEnv(vars, fn) {
  const old = {};
  for (const k of Object.keys(vars)) { old[k] = process.env[k]; if (vars[k] === undefined) delete process.env[k]; else process.env[k] = vars[k]; }
  try { return await fn(); } finally {
    for (const k of Object.keys(vars)) { if (old[k] === undefined) delete process.env[k]; else process.env[k] = old[k]; }
  }
}

/** Random, incompressible bytes (for images whose size must survive gzip). */
export function randomFile(size) {
  return randomBytes(size);
}

/**
 * A proxy in front of a registry (127.0.0.1:<free port>), for what docker-registry cannot do
 * by itself here:
 *  - bearer: { user, pass }: the token flow (401 + WWW-Authenticate: Bearer realm=<proxy>/token,
 *    service, scope; /token checks Basic credentials and grants the scopes asked for; anonymous
 *    tokens grant nothing);
 *  - fault(req, n) => null | { status, retryAfter } | { resetAfter: bytes }: n counts requests
 *    with the same method and URL (1 = first); a reset closes the connection mid-body.
 * Returns { host, port, stats: { tokens: [{scopes, user}], faults, requests, urls: ['GET /v2/...'] }, stop() }.
 */
export async function startAuthProxy(upstream, { bearer, fault } = {}) {
  const [upHost, upPort] = upstream.split(':');
  const port = await freePort();
  const realm = `http://127.0.0.1:${port}/token`;
  const tokens = new Map();
  const counts = new Map();
  const stats = { tokens: [], faults: 0, requests: 0, urls: [] };
  const sockets = new Set();
  const json = (res, status, body, headers = {}) => {
    const b = Buffer.from(JSON.stringify(body));
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': b.length, ...headers });
    res.end(b);
  };
  const covers = (granted, name, action) => granted.some((s) => {
    const m = /^repository:(.+):([a-z,*]+)$/.exec(s);
    return m && m[1] === name && (m[2].split(',').includes(action) || m[2] === '*');
  });
  const server = http.createServer((req, res) => {
    const u = new URL(req.url, realm);
    if (u.pathname === '/token') {
      const scopes = u.searchParams.getAll('scope');
      let user;
      const a = req.headers.authorization;
      if (a) {
        const [u1, p1] = Buffer.from(a.replace(/^Basic /, ''), 'base64').toString().split(':');
        if (!bearer || u1 !== bearer.user || p1 !== bearer.pass) {
          return json(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'incorrect username or password' }] });
        }
        user = u1;
      }
      const token = randomBytes(16).toString('hex');
      tokens.set(token, { scopes: user ? scopes : [], user });
      stats.tokens.push({ scopes, user, service: u.searchParams.get('service') });
      return json(res, 200, { token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() });
    }
    stats.requests++;
    const key = `${req.method} ${req.url}`;
    stats.urls.push(key);
    const n = (counts.get(key) ?? 0) + 1;
    counts.set(key, n);
    const f = fault?.(req, n);
    if (f?.status) {
      stats.faults++;
      req.resume();
      return json(res, f.status, { errors: [{ code: 'UNAVAILABLE', message: `injected ${f.status}` }] }, f.retryAfter ? { 'Retry-After': f.retryAfter } : {});
    }
    if (bearer) {
      const m = /^\/v2\/(.+?)\/(manifests|blobs|tags)\//.exec(u.pathname);
      const action = req.method === 'GET' || req.method === 'HEAD' ? 'pull' : 'push';
      const tok = tokens.get((req.headers.authorization ?? '').replace(/^Bearer /, ''));
      const ok = m ? tok && covers(tok.scopes, m[1], action) : !!tok;
      if (!ok) {
        req.resume();
        const scope = m ? `,scope="repository:${m[1]}:${action === 'push' ? 'pull,push' : 'pull'}"` : '';
        return json(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] },
          { 'WWW-Authenticate': `Bearer realm="${realm}",service="tsrun-test"${scope}` });
      }
    }
    const headers = { ...req.headers };
    delete headers.authorization;
    const up = http.request({ host: upHost, port: Number(upPort), method: req.method, path: req.url, headers }, (ur) => {
      res.writeHead(ur.statusCode, ur.headers);
      if (f?.resetAfter !== undefined) {
        stats.faults++;
        let sent = 0;
        ur.on('data', (c) => {
          if (sent >= f.resetAfter) return;
          const part = c.subarray(0, f.resetAfter - sent);
          sent += part.length;
          res.write(part);
          if (sent >= f.resetAfter) { ur.destroy(); res.socket.destroy(); }
        });
        return;
      }
      ur.pipe(res);
    });
    up.on('error', () => { try { res.socket.destroy(); } catch { /* gone */ } });
    req.pipe(up);
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return {
    host: `127.0.0.1:${port}`, port, stats,
    stop: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}
