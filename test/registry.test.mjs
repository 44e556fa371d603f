// The registry client, pull and push against real registries (Debian's docker-registry, one
// open and one with htpasswd auth, plus a bearer-token front in front of the open one), with
// skopeo as the independent client that publishes the test images and checks what we push.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import os from 'node:os';
import dns from 'node:dns/promises';
import { PassThrough } from 'node:stream';
import {
  startRegistry, startAuthProxy, loadImageLib, makeLayer, addImage, addIndex, skopeoPush, skopeoInspect, skopeo,
  layoutBlobs, tmpDir, removeTmpDirs, TEST_ROOTFS, MT, sha256,
} from './helpers/registry.mjs';

const USER = 'tsrun';
const PASS = 'secret-pw';
let reg, authReg, lib, layoutRoot, dockerConfig;
const img = {};   // images published in before()

function newStore() {
  return new lib.ImageStore(tmpDir('tsrun-store-'));
}
const ref = (s) => lib.parseRef(s);

test.before(async () => {
  if (!fs.existsSync(path.join(TEST_ROOTFS, 'bin', 'busybox'))) throw new Error(`no test rootfs at ${TEST_ROOTFS}: run scripts/make-test-image.sh`);
  dockerConfig = tmpDir('tsrun-dockercfg-');
  process.env.DOCKER_CONFIG = dockerConfig;
  delete process.env.TSRUN_INSECURE_REGISTRIES;
  [reg, authReg, lib] = await Promise.all([startRegistry(), startRegistry({ htpasswd: { user: USER, pass: PASS }, name: 'authreg' }), loadImageLib()]);
  layoutRoot = tmpDir('tsrun-layouts-');

  // busybox: one layer (the test rootfs), OCI media types.
  const bb = path.join(layoutRoot, 'busybox');
  img.busybox = addImage(bb, { layers: [makeLayer({ dir: TEST_ROOTFS })], tag: 'v1' });
  skopeoPush(bb, 'v1', `${reg.host}/test/busybox:1`);
  skopeoPush(bb, 'v1', `${authReg.host}/private/busybox:1`, { creds: `${USER}:${PASS}` });

  // multi: three layers, Docker v2 media types, whiteouts (a file, an opaque dir).
  const multi = path.join(layoutRoot, 'multi');
  img.multi = addImage(multi, {
    docker: true, tag: 'v1', layers: [
      makeLayer({ dir: TEST_ROOTFS }),
      makeLayer({ files: { 'etc/app.conf': 'a=1\n', 'opt/data/a': 'A', 'opt/data/b': 'B', removeme: 'x', 'keep/me': 'k' } }),
      makeLayer({ files: { '.wh.removeme': '', 'opt/data/.wh..wh..opq': '', 'opt/data/c': 'C', 'etc/app.conf': 'a=2\n' } }),
    ],
  });
  skopeoPush(multi, 'v1', `${reg.host}/test/multi:1`);

  // multiarch: an index with linux/amd64, linux/arm64/v8 and linux/arm/v7.
  const ma = path.join(layoutRoot, 'multiarch');
  const plat = (os, architecture, variant) => ({ os, architecture, ...(variant ? { variant } : {}) });
  const images = [plat('linux', 'amd64'), plat('linux', 'arm64', 'v8'), plat('linux', 'arm', 'v7')].map((p) =>
    addImage(ma, { platform: p, layers: [makeLayer({ files: { arch: `${p.architecture}${p.variant ?? ''}\n` } })] }));
  img.multiarch = { images, ...addIndex(ma, 'v1', images) };
  skopeoPush(ma, 'v1', `${reg.host}/test/multiarch:1`, { all: true });
});

test.after.always(async () => {
  await Promise.all([reg?.stop(), authReg?.stop()]);
  removeTmpDirs(); // stores, layouts, registry storage, the bundled library
});

// --- references ------------------------------------------------------------------------

test('parseRef normalises like docker', (t) => {
  const cases = {
    busybox: 'docker.io/library/busybox:latest',
    'busybox:1.36': 'docker.io/library/busybox:1.36',
    'user/app': 'docker.io/user/app:latest',
    'docker.io/busybox': 'docker.io/library/busybox:latest',
    'index.docker.io/library/busybox:1': 'docker.io/library/busybox:1',
    'host:5000/ns/name:tag': 'host:5000/ns/name:tag',
    'localhost/name': 'localhost/name:latest',
    'localhost:5000/x:y': 'localhost:5000/x:y',
    'quay.io/a/b/c:v1.2_3-x': 'quay.io/a/b/c:v1.2_3-x',
    [`name@sha256:${'a'.repeat(64)}`]: `docker.io/library/name@sha256:${'a'.repeat(64)}`,
    [`name:tag@sha256:${'b'.repeat(64)}`]: `docker.io/library/name:tag@sha256:${'b'.repeat(64)}`,
    '[::1]:5000/foo:bar': '[::1]:5000/foo:bar',
  };
  for (const [input, want] of Object.entries(cases)) t.is(lib.formatRef(ref(input)), want, input);
  t.deepEqual(ref('host:5000/ns/name:tag'), { domain: 'host:5000', path: 'ns/name', tag: 'tag' });
  t.deepEqual(ref(`x@sha256:${'c'.repeat(64)}`), { domain: 'docker.io', path: 'library/x', digest: `sha256:${'c'.repeat(64)}` });
  t.is(lib.familiarRef(ref('busybox')), 'busybox:latest');
  t.is(lib.familiarRef(ref('user/app:1')), 'user/app:1');
  t.is(lib.familiarRef(ref('localhost:5000/x:y')), 'localhost:5000/x:y');
  t.is(lib.familiarRef(ref('docker.io/library/a/b')), 'library/a/b:latest');
  t.is(lib.repoName(ref('busybox')), 'docker.io/library/busybox');
  t.is(lib.registryHost('docker.io'), 'registry-1.docker.io');
  t.is(lib.registryHost('localhost:5000'), 'localhost:5000');
});

test('invalid references give one-line "invalid reference format" errors', (t) => {
  const bad = {
    '': /empty reference/,
    'Busybox': /repository name must be lowercase/,
    'busybox:': /invalid tag ""/,
    'busybox:bad/tag': /invalid reference format/,
    'a:-x': /invalid tag "-x"/,
    [`busybox:${'t'.repeat(129)}`]: /invalid tag/,
    'busybox@sha256:123': /invalid sha256 digest|invalid digest/,
    'busybox@md5:0123456789abcdef0123456789abcdef': /unsupported digest algorithm/,
    'a//b': /empty path component/,
    'a/-b': /invalid repository name component/,
    'http://x/y': /no scheme/,
    'bad host:5000/x': /whitespace/,
    ':tag': /no repository name/,
    'ho_st.com/x': /invalid registry host/,
    [`x/${'a'.repeat(300)}`]: /more than 255/,
  };
  for (const [input, re] of Object.entries(bad)) {
    const e = t.throws(() => ref(input), undefined, JSON.stringify(input));
    t.regex(e.message, /^invalid reference format: /, input);
    t.regex(e.message, re, input);
    t.false(e.message.includes('\n'), input);
  }
});

test('platforms: parse, normalise, select like containerd', (t) => {
  const { parsePlatform, selectManifest, formatPlatform } = lib.registry;
  t.deepEqual(parsePlatform('linux/amd64'), { os: 'linux', architecture: 'amd64' });
  t.deepEqual(parsePlatform('linux/aarch64'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
  t.deepEqual(parsePlatform('linux/arm'), { os: 'linux', architecture: 'arm', variant: 'v7' });
  t.is(formatPlatform(parsePlatform('linux/arm/6')), 'linux/arm/v6');
  t.throws(() => parsePlatform('linux//x'), { message: /invalid platform/ });
  const d = (architecture, variant) => ({ mediaType: MT.OCI_MANIFEST, digest: `sha256:${architecture}${variant ?? ''}`, size: 1, platform: { os: 'linux', architecture, ...(variant ? { variant } : {}) } });
  const list = [d('amd64'), d('arm64', 'v8'), d('arm', 'v6'), d('arm', 'v5')];
  t.is(selectManifest(list, parsePlatform('linux/amd64')).digest, 'sha256:amd64');
  t.is(selectManifest(list, parsePlatform('linux/arm64')).digest, 'sha256:arm64v8');
  t.is(selectManifest(list, parsePlatform('linux/arm/v7')).digest, 'sha256:armv6', 'v7 runs v6');
  t.is(selectManifest([d('arm64')], parsePlatform('linux/arm64')).digest, 'sha256:arm64', 'no variant = v8');
  t.throws(() => selectManifest(list, parsePlatform('linux/s390x')), { message: 'no matching manifest for linux/s390x in the manifest list entries' });
});

// --- pull ------------------------------------------------------------------------------

test('pull: a one-layer OCI image into the store', async (t) => {
  const store = newStore();
  const events = [];
  const rec = await lib.pullImage(store, ref(`${reg.host}/test/busybox:1`), { progress: (e) => events.push(e) });
  const im = img.busybox;
  t.is(rec.id, im.configDigest);
  t.deepEqual(rec.repoTags, [`${reg.host}/test/busybox:1`]);
  t.deepEqual(rec.repoDigests, [`${reg.host}/test/busybox@${im.manifestDigest}`]);
  t.is(rec.manifestDigest, im.manifestDigest);
  t.is(rec.manifestMediaType, MT.OCI_MANIFEST);
  t.is(rec.created, '2024-01-02T03:04:05Z');
  t.is(rec.layers.length, 1);
  const [l] = rec.layers;
  t.is(l.blobDigest, im.layers[0].digest);
  t.is(l.diffId, im.layers[0].diffId);
  t.is(l.chainId, im.layers[0].diffId, 'the base layer\'s chain id is its diff id');
  t.is(l.size, im.layers[0].size);
  t.is(l.mediaType, MT.OCI_LAYER_GZIP);
  t.true(rec.size > 1_000_000, `unpacked size ${rec.size}`);
  // Blobs: manifest, config, layer, as the registry has them.
  for (const d of [im.manifestDigest, im.configDigest, l.blobDigest]) t.true(store.content.has(d), d);
  t.deepEqual(store.content.read(im.manifestDigest), im.manifestBytes);
  t.true(store.layers.has(l.chainId));
  const diff = store.layers.diffDir(l.chainId);
  t.true(fs.statSync(path.join(diff, 'bin', 'busybox')).isFile());
  t.is(fs.readlinkSync(path.join(diff, 'bin', 'sh')), 'busybox');
  t.deepEqual(store.find(`${reg.host}/test/busybox:1`)?.id, rec.id);
  // Progress: the layer went through to done; the digest was announced.
  t.true(events.some((e) => e.kind === 'layer' && e.status === 'done' && e.id === l.blobDigest.slice(7, 19)));
  t.true(events.some((e) => e.kind === 'layer' && e.status === 'downloading' && e.current === e.total));
  t.deepEqual(events.find((e) => e.kind === 'digest'), { kind: 'digest', digest: im.manifestDigest });

  // Pulling again downloads no blob (see also the shared-base test, which counts requests).
  const ev2 = [];
  const again = await lib.pullImage(store, ref(`${reg.host}/test/busybox:1`), { progress: (e) => ev2.push(e) });
  t.is(again.id, rec.id);
  t.deepEqual(ev2.filter((e) => e.kind === 'layer').map((e) => e.status), ['exists']);
  t.is(store.list().length, 1);
});

test('pull: multi-layer Docker v2 image with whiteouts, diff ids checked, chain ids', async (t) => {
  const store = newStore();
  const rec = await lib.pullImage(store, ref(`${reg.host}/test/multi:1`), { concurrency: 2 });
  const im = img.multi;
  t.is(rec.manifestMediaType, MT.DOCKER_MANIFEST);
  t.deepEqual(rec.layers.map((l) => l.diffId), im.config.rootfs.diff_ids);
  t.deepEqual(rec.layers.map((l) => l.mediaType), [MT.DOCKER_LAYER_GZIP, MT.DOCKER_LAYER_GZIP, MT.DOCKER_LAYER_GZIP]);
  let parent;
  for (const l of rec.layers) {
    const chain = parent ? sha256(Buffer.from(`${parent} ${l.diffId}`)) : l.diffId;
    t.is(l.chainId, chain);
    t.true(store.layers.has(chain));
    parent = chain;
  }
  const top = store.layers.diffDir(rec.layers[2].chainId);
  const wh = fs.lstatSync(path.join(top, 'removeme'));
  t.true(wh.isCharacterDevice() && wh.rdev === 0, 'a whiteout is a 0/0 char device');
  t.is(fs.readFileSync(path.join(top, 'opt/data/c'), 'utf8'), 'C');
  t.is(fs.readFileSync(path.join(top, 'etc/app.conf'), 'utf8'), 'a=2\n');
  t.is(fs.readFileSync(path.join(store.layers.diffDir(rec.layers[1].chainId), 'keep/me'), 'utf8'), 'k');
  // The other schedules give the same: one layer at a time, and every layer on this thread
  // (no worker threads; the default uses them when dist/pull-worker.js is built).
  for (const [opts, workers] of [[{ concurrency: 1 }, undefined], [{ concurrency: 3 }, '1']]) {
    const s2 = newStore();
    const saved = process.env.TSRUN_PULL_THREADS;
    if (workers === undefined) delete process.env.TSRUN_PULL_THREADS; else process.env.TSRUN_PULL_THREADS = workers;
    let r2;
    try { r2 = await lib.pullImage(s2, ref(`${reg.host}/test/multi:1`), opts); } finally {
      if (saved === undefined) delete process.env.TSRUN_PULL_THREADS; else process.env.TSRUN_PULL_THREADS = saved;
    }
    t.deepEqual({ ...r2, created: 0 }, { ...rec, created: 0 }, JSON.stringify(opts));
    t.deepEqual(s2.layers.list().sort(), store.layers.list().sort());
  }
});

test('pull: shared base layer already present is not downloaded again', async (t) => {
  // Through a counting proxy: the registry's own log has the other tests' requests too.
  const proxy = await startAuthProxy(reg.host);
  try {
    const store = newStore();
    await lib.pullImage(store, ref(`${proxy.host}/test/busybox:1`));
    const events = [];
    const before = proxy.stats.urls.length;
    await lib.pullImage(store, ref(`${proxy.host}/test/multi:1`), { progress: (e) => events.push(e) });
    const base = img.multi.layers[0].digest;
    t.true(events.some((e) => e.kind === 'layer' && e.id === base.slice(7, 19) && e.status === 'exists'));
    const urls = proxy.stats.urls.slice(before);
    t.false(urls.some((x) => x.includes(`blobs/${base}`)), 'base blob not fetched');
    t.is(urls.filter((x) => x.includes('/blobs/')).length, 3, `config + 2 layers: ${urls.join(', ')}`);
    t.is(store.list().length, 2);
  } finally { await proxy.stop(); }
});

test('pull: a blob used by two layers (an empty layer twice) is downloaded once', async (t) => {
  const dir = path.join(layoutRoot, 'dup');
  const empty = makeLayer({ files: {} });
  const im = addImage(dir, { tag: 'v1', layers: [makeLayer({ files: { a: 'a' } }), empty, makeLayer({ files: { b: 'b' } }), empty] });
  skopeoPush(dir, 'v1', `${reg.host}/test/dup:1`);
  const proxy = await startAuthProxy(reg.host);
  try {
    const store = newStore();
    const rec = await lib.pullImage(store, ref(`${proxy.host}/test/dup:1`));
    t.deepEqual(rec.layers.map((l) => l.blobDigest), im.layers.map((l) => l.digest));
    t.is(new Set(rec.layers.map((l) => l.chainId)).size, 4, 'four chain ids');
    for (const l of rec.layers) t.true(store.layers.has(l.chainId));
    t.is(proxy.stats.urls.filter((u) => u === `GET /v2/test/dup/blobs/${empty.digest}`).length, 1);
  } finally { await proxy.stop(); }
});

test('pull by digest: no tag, the digest is checked; an unknown digest fails cleanly', async (t) => {
  const store = newStore();
  const d = img.busybox.manifestDigest;
  const rec = await lib.pullImage(store, ref(`${reg.host}/test/busybox@${d}`));
  t.deepEqual(rec.repoTags, []);
  t.deepEqual(rec.repoDigests, [`${reg.host}/test/busybox@${d}`]);
  const other = `sha256:${'0'.repeat(64)}`;
  const e = await t.throwsAsync(lib.pullImage(store, ref(`${reg.host}/test/busybox@${other}`)));
  t.is(e.message, `pull ${reg.host}/test/busybox@${other}: manifest unknown`);
});

test('pull: manifest list picks the platform; --platform; no match is docker\'s error', async (t) => {
  const store = newStore();
  const [amd64, arm64, arm] = img.multiarch.images;
  const rec = await lib.pullImage(store, ref(`${reg.host}/test/multiarch:1`));
  t.is(rec.id, amd64.configDigest);
  t.is(rec.manifestDigest, amd64.manifestDigest);
  t.deepEqual(rec.repoDigests, [`${reg.host}/test/multiarch@${img.multiarch.indexDigest}`], 'repo digest: the index, as docker');
  t.true(store.content.has(img.multiarch.indexDigest));
  t.is(fs.readFileSync(path.join(store.layers.diffDir(rec.layers[0].chainId), 'arch'), 'utf8'), 'amd64\n');

  const s2 = newStore();
  const a64 = await lib.pullImage(s2, ref(`${reg.host}/test/multiarch:1`), { platform: 'linux/arm64' });
  t.is(a64.id, arm64.configDigest);
  const a7 = await lib.pullImage(s2, ref(`${reg.host}/test/multiarch:1`), { platform: 'linux/arm/v7' });
  t.is(a7.id, arm.configDigest);
  const e = await t.throwsAsync(lib.pullImage(newStore(), ref(`${reg.host}/test/multiarch:1`), { platform: 'linux/s390x' }));
  t.is(e.message, `pull ${reg.host}/test/multiarch:1: no matching manifest for linux/s390x in the manifest list entries`);
  // A single-platform image pulled with another --platform.
  const e2 = await t.throwsAsync(lib.pullImage(newStore(), ref(`${reg.host}/test/busybox:1`), { platform: 'linux/arm64' }));
  t.regex(e2.message, /does not match the specified platform: wanted linux\/arm64\/v8, actual: linux\/amd64/);
});

test('pull: a tampered blob in the registry is a digest mismatch and nothing is stored', async (t) => {
  // An image of its own: the registry shares blobs between repositories.
  const dir = path.join(layoutRoot, 'tamper');
  const noise = crypto.randomBytes(256 << 10);
  const im = addImage(dir, { tag: 'v1', layers: [makeLayer({ files: { 'noise.bin': noise, 'etc/x': 'x' } })] });
  skopeoPush(dir, 'v1', `${reg.host}/test/tamper:1`);
  const blob = reg.blobFile(im.layers[0].digest);
  const buf = fs.readFileSync(blob);
  buf.fill(0x55, buf.length >> 1, (buf.length >> 1) + 64); // same size, other bytes
  fs.writeFileSync(blob, buf);

  const store = newStore();
  const e = await t.throwsAsync(lib.pullImage(store, ref(`${reg.host}/test/tamper:1`)));
  t.regex(e.message, new RegExp(`^pull ${reg.host}/test/tamper:1: .*digest mismatch for ${im.layers[0].digest}`));
  t.false(e.message.includes('\n'));
  t.deepEqual(store.list(), []);
  t.deepEqual(store.content.list(), [], 'no blob kept (not even manifest or config)');
  t.deepEqual(store.layers.list(), [], 'no layer kept');
});

test('pull: unknown tag, unknown repository, refused connection: one-line errors', async (t) => {
  const store = newStore();
  let e = await t.throwsAsync(lib.pullImage(store, ref(`${reg.host}/test/busybox:nope`)));
  t.is(e.message, `pull ${reg.host}/test/busybox:nope: manifest unknown`);
  e = await t.throwsAsync(lib.pullImage(store, ref(`${reg.host}/no/such:1`)));
  t.regex(e.message, new RegExp(`^pull ${reg.host}/no/such:1: (name unknown|manifest unknown)`));
  e = await t.throwsAsync(lib.pullImage(store, ref('127.0.0.1:1/x/y:1')));
  t.regex(e.message, /^pull 127\.0\.0\.1:1\/x\/y:1: connect ECONNREFUSED 127\.0\.0\.1:1$/);
});

test('pull: retries 503s, a 429 with Retry-After and a connection reset mid-blob', async (t) => {
  const seen = {};
  const proxy = await startAuthProxy(reg.host, {
    fault(req, n) {
      // n: how many times this method+url was seen (1 = first).
      seen[req.url] = n;
      if (req.url.includes('/manifests/') && n === 1) return { status: 429, retryAfter: '1' };
      if (req.url.includes('/blobs/') && n === 1) return { status: 503 };
      if (req.url.includes(img.multi.layers[0].digest) && n === 2) return { resetAfter: 100_000 };
      return null;
    },
  });
  try {
    const store = newStore();
    const t0 = Date.now();
    const rec = await lib.pullImage(store, ref(`${proxy.host}/test/multi:1`));
    t.is(rec.id, img.multi.configDigest);
    t.true(Date.now() - t0 >= 900, 'waited for Retry-After');
    t.is(seen[`/v2/test/multi/blobs/${img.multi.layers[0].digest}`], 3, '503, reset, then whole');
    t.true(proxy.stats.faults >= 5);
  } finally { await proxy.stop(); }
});

// --- push ------------------------------------------------------------------------------

test('push: to another repository: mounted across repositories, same digest, skopeo agrees', async (t) => {
  const store = newStore();
  const rec = await lib.pullImage(store, ref(`${reg.host}/test/multi:1`));
  const mark = reg.log().length;
  const events = [];
  const { digest } = await lib.pushImage(store, `${reg.host}/test/multi:1`, ref(`${reg.host}/pushed/multi:2`), { progress: (e) => events.push(e) });
  t.is(digest, img.multi.manifestDigest, 'the stored manifest is pushed as it is');
  const log = reg.access(mark);
  const mounts = log.filter((l) => /POST \/v2\/pushed\/multi\/blobs\/uploads\/\?mount=sha256%3A[0-9a-f]+&from=test%2F(multi|busybox) HTTP\/1.1" 201/.test(l)); // busybox: the base layer, if another test pulled it last
  t.is(mounts.length, 4, `3 layers + config mounted:\n${log.join('\n')}`);
  t.false(log.some((l) => /(PUT|PATCH) \/v2\/pushed\/multi\/blobs\/uploads\//.test(l)), 'no blob uploaded');
  t.is(events.filter((e) => e.kind === 'layer' && e.status === 'mounted').length, 3);

  const info = skopeoInspect(`${reg.host}/pushed/multi:2`);
  t.is(info.Digest, digest);
  t.deepEqual(info.Layers, rec.layers.map((l) => l.blobDigest));
  t.true(store.find(rec.id).repoDigests.includes(`${reg.host}/pushed/multi@${digest}`));
  // Pushing again: every blob is already there.
  const mark2 = reg.log().length;
  const ev2 = [];
  await lib.pushImage(store, rec.id, ref(`${reg.host}/pushed/multi:2`), { progress: (e) => ev2.push(e) });
  t.is(ev2.filter((e) => e.kind === 'layer' && e.status === 'exists').length, 3);
  t.false(reg.access(mark2).some((l) => /POST \/v2\/pushed\/multi\//.test(l)));
});

test('push: an image with no stored manifest gets a new one; blobs are uploaded; skopeo copies it back', async (t) => {
  const store = newStore();
  const layers = [makeLayer({ files: { 'a.bin': crypto.randomBytes(300 << 10) } }), makeLayer({ files: { 'b.txt': 'b' } })];
  const config = { architecture: 'amd64', os: 'linux', created: '2024-05-06T07:08:09Z', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) }, config: { Cmd: ['/bin/sh'] } };
  const cfgBytes = Buffer.from(JSON.stringify(config));
  const id = store.content.put(cfgBytes);
  let parent;
  const recLayers = layers.map((l) => {
    store.content.put(l.blob);
    const chainId = parent ? sha256(Buffer.from(`${parent} ${l.diffId}`)) : l.diffId;
    parent = chainId;
    return { chainId, diffId: l.diffId, blobDigest: l.digest, mediaType: MT.DOCKER_LAYER_GZIP, size: l.size };
  });
  store.put({ id, repoTags: ['localhost/built:1'], repoDigests: [], manifestDigest: '', manifestMediaType: '', layers: recLayers, created: config.created, size: 0 });
  const mark = reg.log().length;
  const { digest } = await lib.pushImage(store, 'localhost/built:1', ref(`${reg.host}/built/img:1`));
  const log = reg.access(mark);
  t.is(log.filter((l) => /PUT \/v2\/built\/img\/blobs\/uploads\/.*digest=sha256/.test(l) && /" 201 /.test(l)).length, 3, log.join('\n'));
  const raw = skopeoInspect(`${reg.host}/built/img:1`, { raw: true });
  t.is(sha256(Buffer.from(raw)), digest);
  const m = JSON.parse(raw);
  t.is(m.mediaType, MT.DOCKER_MANIFEST);
  t.is(m.config.digest, id);
  t.deepEqual(m.layers.map((l) => [l.digest, l.size, l.mediaType]), layers.map((l) => [l.digest, l.size, MT.DOCKER_LAYER_GZIP]));
  // skopeo copies it back into an OCI layout: the blobs are ours, byte for byte.
  const back = tmpDir('tsrun-back-');
  skopeo(['copy', '--quiet', '--src-tls-verify=false', '--preserve-digests', `docker://${reg.host}/built/img:1`, `oci:${back}:x`]);
  const blobs = layoutBlobs(back);
  for (const l of layers) t.is(blobs[l.digest], l.size);
  t.true(id in blobs);
  const after = store.find(id);
  t.is(after.manifestDigest, digest, 'the record now points at the pushed manifest');
  t.true(store.content.has(digest));
  fs.rmSync(back, { recursive: true, force: true });
});

test('push: errors: unknown image, digest target', async (t) => {
  const store = newStore();
  let e = await t.throwsAsync(lib.pushImage(store, 'nothing:here', ref(`${reg.host}/x/y:1`)));
  t.is(e.message, `push ${reg.host}/x/y:1: no such image: nothing:here`);
  e = await t.throwsAsync(lib.pushImage(store, 'x', ref(`${reg.host}/x/y@sha256:${'1'.repeat(64)}`)));
  t.regex(e.message, /cannot push to a digest reference/);
});

// --- auth ------------------------------------------------------------------------------

test.serial('auth (htpasswd): unauthorized without login; login checks, stores 0600 creds; logout removes them', async (t) => {
  const host = authReg.host;
  const target = ref(`${host}/private/busybox:1`);
  let e = await t.throwsAsync(lib.pullImage(newStore(), target));
  t.is(e.message, `pull ${host}/private/busybox:1: unauthorized: authentication required`);

  e = await t.throwsAsync(lib.registry.login(host, USER, 'wrong'));
  t.regex(e.message, new RegExp(`^login ${host}: unauthorized`));
  const cfgFile = path.join(dockerConfig, 'config.json');
  t.false(fs.existsSync(cfgFile), 'nothing written for a failed login');

  // Other keys of an existing config.json survive.
  fs.writeFileSync(cfgFile, JSON.stringify({ auths: { 'other.example:5000': { auth: 'eDp5' } }, psFormat: 'table' }), { mode: 0o644 });
  await lib.registry.login(host, USER, PASS);
  t.is(fs.statSync(cfgFile).mode & 0o777, 0o600);
  const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
  t.is(cfg.auths[host].auth, Buffer.from(`${USER}:${PASS}`).toString('base64'));
  t.is(cfg.psFormat, 'table');
  t.truthy(cfg.auths['other.example:5000']);
  t.deepEqual(fs.readdirSync(dockerConfig), ['config.json'], 'no temp file left');

  const store = newStore();
  const rec = await lib.pullImage(store, target);
  t.is(rec.id, img.busybox.configDigest);
  const { digest } = await lib.pushImage(store, rec.id, ref(`${host}/private/copy:1`));
  t.is(digest, img.busybox.manifestDigest);
  t.is(skopeoInspect(`${host}/private/copy:1`, { creds: `${USER}:${PASS}` }).Digest, digest);

  t.true(lib.registry.logout(host));
  const after = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
  t.false(host in after.auths);
  t.truthy(after.auths['other.example:5000']);
  t.false(lib.registry.logout(host), 'second logout: nothing to remove');
  e = await t.throwsAsync(lib.pullImage(newStore(), target));
  t.regex(e.message, /unauthorized: authentication required/);
});

test.serial('auth (bearer token): challenge, token with basic creds, cached per scope, push scope', async (t) => {
  const proxy = await startAuthProxy(reg.host, { bearer: { user: USER, pass: PASS } });
  try {
    const host = proxy.host;
    let e = await t.throwsAsync(lib.pullImage(newStore(), ref(`${host}/test/busybox:1`)));
    t.is(e.message, `pull ${host}/test/busybox:1: unauthorized: authentication required`);
    e = await t.throwsAsync(lib.registry.login(host, USER, 'nope'));
    t.is(e.message, `login ${host}: unauthorized: incorrect username or password`);
    await lib.registry.login(host, USER, PASS);
    const before = proxy.stats.tokens.length;
    const store = newStore();
    const rec = await lib.pullImage(store, ref(`${host}/test/multi:1`));
    t.is(rec.id, img.multi.configDigest);
    const toks = proxy.stats.tokens.slice(before);
    t.is(toks.length, 1, `one token for the pull: ${JSON.stringify(toks)}`);
    t.deepEqual(toks[0].scopes, ['repository:test/multi:pull']);
    t.is(toks[0].user, USER);
    const { digest } = await lib.pushImage(store, rec.id, ref(`${host}/tok/multi:1`));
    t.is(digest, img.multi.manifestDigest);
    t.true(proxy.stats.tokens.some((x) => x.scopes.includes('repository:tok/multi:pull,push')));
    t.is(skopeoInspect(`${reg.host}/tok/multi:1`).Digest, digest);
    lib.registry.logout(host);
  } finally { await proxy.stop(); }
});

// --- progress --------------------------------------------------------------------------

function fakeStream(tty) {
  const s = new PassThrough();
  let out = '';
  s.on('data', (c) => { out += c; });
  s.isTTY = tty;
  s.columns = 100;
  return { s, out: () => out };
}

test('progress renderer: plain lines off a terminal, redrawn bars on one', async (t) => {
  const { progressRenderer } = lib.registry;
  const plain = fakeStream(false);
  const tty = fakeStream(true);
  const p1 = progressRenderer(plain.s);
  const p2 = progressRenderer(tty.s);
  await lib.pullImage(newStore(), ref(`${reg.host}/test/multi:1`), { progress: (e) => { p1(e); p2(e); } });
  p2.flush();
  await new Promise((r) => setImmediate(r));
  const ids = img.multi.layers.map((l) => l.digest.slice(7, 19));
  const lines = plain.out().trim().split('\n');
  for (const id of ids) {
    t.true(lines.includes(`${id}: Pulling fs layer`), plain.out());
    t.true(lines.includes(`${id}: Pull complete`), plain.out());
  }
  t.false(plain.out().includes('\x1b['), 'no escapes off a terminal');
  t.regex(tty.out(), /\x1b\[\d+A/, 'cursor up');
  for (const id of ids) t.true(tty.out().includes(`${id}: Pull complete`));
  // Bars (a local pull is too quick to be sure to see one): events by hand, slower than the throttle.
  const t3 = fakeStream(true);
  const p3 = progressRenderer(t3.s);
  p3({ kind: 'layer', id: 'aaaaaaaaaaaa', status: 'waiting' });
  p3({ kind: 'layer', id: 'bbbbbbbbbbbb', status: 'waiting' });
  p3({ kind: 'layer', id: 'aaaaaaaaaaaa', status: 'downloading', current: 1_200_000, total: 3_400_000 });
  await new Promise((r) => setTimeout(r, 150));
  p3({ kind: 'layer', id: 'aaaaaaaaaaaa', status: 'downloading', current: 1_700_000, total: 3_400_000 });
  await new Promise((r) => setTimeout(r, 150));
  p3.flush();
  await new Promise((r) => setImmediate(r));
  t.regex(t3.out(), /aaaaaaaaaaaa: Downloading \[={25}>\s{24}\]\s+1\.7MB\/3\.4MB/);
  t.regex(t3.out(), /\x1b\[2A\r\x1b\[2Kaaaaaaaaaaaa: Downloading/, 'redrawn in place');
  t.is(lib.registry.humanSize(1_234_567), '1.23MB');
  t.is(lib.registry.humanSize(999), '999B');
});

test('insecure registries: TSRUN_INSECURE_REGISTRIES; loopback is plain http', (t) => {
  const { RegistryClient } = lib.registry;
  t.is(new RegistryClient('localhost:5000', { credentials: null }).baseUrl, 'http://localhost:5000');
  t.is(new RegistryClient('127.0.0.5:5000', { credentials: null }).baseUrl, 'http://127.0.0.5:5000');
  t.is(new RegistryClient('[::1]:5000', { credentials: null }).baseUrl, 'http://[::1]:5000');
  t.is(new RegistryClient('reg.example:5000', { credentials: null }).baseUrl, 'https://reg.example:5000');
  t.is(new RegistryClient('docker.io', { credentials: null }).baseUrl, 'https://registry-1.docker.io');
  t.true(lib.registry.isInsecureRegistry('x.example:5000') === false);
  process.env.TSRUN_INSECURE_REGISTRIES = 'a.example, x.example:5000';
  try {
    t.true(lib.registry.isInsecureRegistry('x.example:5000'));
    t.true(lib.registry.isInsecureRegistry('a.example:443'));
  } finally { delete process.env.TSRUN_INSECURE_REGISTRIES; }
});

test('insecure registry: https first, then plain http for a registry in TSRUN_INSECURE_REGISTRIES', async (t) => {
  // Needs a name for this host that is not a loopback name but resolves to 127.0.0.1.
  const name = os.hostname();
  let addr;
  try { addr = (await dns.lookup(name, { family: 4 })).address; } catch { /* none */ }
  if (!name || addr !== '127.0.0.1' || /^localhost$/i.test(name)) { t.log(`skipped: ${name} does not resolve to 127.0.0.1`); t.pass(); return; }
  const target = ref(`${name}:${reg.port}/test/busybox:1`);
  const e = await t.throwsAsync(lib.pullImage(newStore(), target));
  t.is(e.message, `pull ${name}:${reg.port}/test/busybox:1: https://${name}:${reg.port}/v2/test/busybox/manifests/1: TLS handshake failed (wrong version number): the server does not speak HTTPS (for a plain-HTTP registry, add it to TSRUN_INSECURE_REGISTRIES)`);
  t.false(e.message.includes('\n'));
  process.env.TSRUN_INSECURE_REGISTRIES = `other.example,${name}:${reg.port}`;
  try {
    const rec = await lib.pullImage(newStore(), target);
    t.is(rec.id, img.busybox.configDigest);
  } finally { delete process.env.TSRUN_INSECURE_REGISTRIES; }
});

test('challenge parsing', (t) => {
  const { parseChallenges } = lib.registry;
  t.deepEqual(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'),
    { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } });
  t.deepEqual(parseChallenges('Basic realm="x, y"'), { scheme: 'basic', params: { realm: 'x, y' } });
  t.is(parseChallenges('Basic realm="a", Bearer realm="b"').scheme, 'bearer');
  t.is(parseChallenges(undefined), undefined);
});

test('tsrun pull (the command): docker\'s output, the image listed, an image pull event; run from it', async (t) => {
  const { rt, newRoot, describe, IS_TSRUN, childEnv } = await import('./helpers/index.mjs');
  if (!IS_TSRUN) return t.pass('tsrun-only');
  const root = newRoot(t);
  const r = rt(root);
  const name = `${reg.host}/test/busybox:1`;
  const res = await r(['pull', name], { env: childEnv({ TSRUN_DEFAULT_NETWORK: 'none' }) });
  t.is(res.code, 0, describe(res));
  const lines = res.stdout.trim().split('\n');
  t.is(lines[0], '1: Pulling from test/busybox');
  t.regex(lines.at(-3), /^Digest: sha256:[0-9a-f]{64}$/);
  t.is(lines.at(-2), `Status: Downloaded newer image for ${name}`);
  t.is(lines.at(-1), name);
  const ls = await r(['images', '--format', '{{.Repository}}:{{.Tag}}']);
  t.regex(ls.stdout, new RegExp(`^${reg.host}/test/busybox:1$`, 'm'));
  const ev = await r(['events', '--since', '10m', '--until', '0s', '--filter', 'event=pull', '--format', '{{.Type}} {{.Action}} {{.Actor.Attributes.name}}']);
  t.is(ev.stdout.trim(), `image pull ${name}`, describe(ev));
  const run = await r(['run', '--rm', '--network', 'none', name, 'echo', 'pulled-ok']);
  t.is(run.stdout, 'pulled-ok\n', describe(run));
});
