// The image store on the real kernel (root): content store, layer unpacking (whiteouts, hostile
// tarballs), overlay snapshots (130 layers), diffToTar, image records and gc.
// src/image/store is bundled with esbuild into dist/ for the duration of this file (the tests run
// the TypeScript as the CLI bundle does, with the same native shim).
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  mkdtempSync, mkdirSync, writeFileSync, readFileSync, readdirSync, rmSync, lstatSync, statSync, symlinkSync, existsSync, readlinkSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { Header } from 'tar';
import { REPO, mountsUnder } from './helpers/index.mjs';

const require = createRequire(import.meta.url);
const BUNDLE = join(REPO, 'dist', `.image-store-test-${process.pid}.cjs`);
let S; // the bundled module: the store's API, plus tarfmt (the tar reader) and fsops

test.before(async () => {
  execFileSync('make', ['-s', '-C', join(REPO, 'native')], { stdio: 'inherit' });
  mkdirSync(join(REPO, 'dist'), { recursive: true });
  await build({
    stdin: {
      contents: "export * from './src/image/store/index.ts'; export * as tarfmt from './src/image/store/tar.ts'; export * as fsops from './src/kernel/fsops.ts';",
      resolveDir: REPO, loader: 'ts', sourcefile: 'image-store-test-entry.ts',
    },
    bundle: true, platform: 'node', target: 'node20', format: 'cjs', outfile: BUNDLE,
    external: ['*.node', 'koffi'], logLevel: 'warning',
  });
  S = require(BUNDLE);
});

test.after.always(() => rmSync(BUNDLE, { force: true }));

const OCI_TAR = 'application/vnd.oci.image.layer.v1.tar';
const OCI_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const sha = b => 'sha256:' + createHash('sha256').update(b).digest('hex');

/** A temp engine root; teardown fails the test if anything is still mounted under it. */
function tempRoot(t) {
  const root = mkdtempSync(join(tmpdir(), 'tsrun-imgstore-'));
  t.teardown(() => {
    const left = mountsUnder(root);
    if (left.length) {
      // clean up what a failed test left (our own snapshots only), then fail
      for (const m of left.reverse()) { try { execFileSync('umount', ['-l', m]); } catch { /* gone */ } }
      throw new Error(`mounts left under ${root}:\n  ${left.join('\n  ')}`);
    }
    rmSync(root, { recursive: true, force: true });
  });
  return root;
}

function victimDir(t) {
  const d = mkdtempSync(join(tmpdir(), 'tsrun-victim-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/**
 * A tar archive from entry specs, written header by header with tar's Header (no sanitising: the
 * hostile paths stay as given). { path, type = 'File', body, linkpath, mode, uid, gid, devmaj, devmin, pax }
 */
function tarball(entries) {
  const parts = [];
  const pad = n => Buffer.alloc((512 - (n % 512)) % 512);
  for (const e of entries) {
    const type = e.type ?? 'File';
    const body = Buffer.from(e.body ?? '');
    if (e.pax) {
      const recs = Buffer.concat(Object.entries(e.pax).map(([k, v]) => {
        const val = Buffer.isBuffer(v) ? v : Buffer.from(String(v));
        const rest = Buffer.concat([Buffer.from(` ${k}=`), val, Buffer.from('\n')]);
        let len = rest.length + String(rest.length).length;
        if (String(len).length !== String(rest.length).length) len = rest.length + String(len).length;
        return Buffer.concat([Buffer.from(String(len)), rest]);
      }));
      const ph = new Header({ path: 'PaxHeaders/x', type: 'ExtendedHeader', size: recs.length, mode: 0o644, mtime: new Date(1_700_000_000_000) });
      ph.encode();
      parts.push(ph.block, recs, pad(recs.length));
    }
    const h = new Header({
      path: e.path, type, mode: e.mode ?? (type === 'Directory' ? 0o755 : 0o644), uid: e.uid ?? 0, gid: e.gid ?? 0,
      size: type === 'File' ? body.length : 0, mtime: new Date((e.mtime ?? 1_700_000_000) * 1000), linkpath: e.linkpath ?? '',
      uname: '', gname: '', devmaj: e.devmaj ?? 0, devmin: e.devmin ?? 0,
    });
    h.encode();
    parts.push(h.block);
    if (type === 'File' && body.length) parts.push(body, pad(body.length));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** Bytes as an async iterable in small chunks (exercises the stream parsers' buffering). */
async function* chunked(buf, size = 700) {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

function listTar(buf) {
  const out = [];
  let cur;
  const r = new S.tarfmt.TarReader({
    entry(e) { cur = { ...e, body: [] }; out.push(cur); },
    data(c) { cur.body.push(Buffer.from(c)); },
    end() { cur.body = Buffer.concat(cur.body); },
  });
  r.write(buf);
  r.finish();
  return out;
}

// ---- content store ----------------------------------------------------------------------------

test('content: ingest hashes while streaming, verifies digest and size; a mismatch leaves nothing', async t => {
  const root = tempRoot(t);
  const c = new S.ContentStore(root);
  const data = randomBytes(300_000);
  const digest = sha(data);
  let seen = 0;
  t.is(await c.ingest(chunked(data, 65536), { digest, size: data.length }, n => { seen += n; }), digest);
  t.is(seen, data.length);
  t.true(c.has(digest));
  t.is(c.size(digest), data.length);
  t.is(c.path(digest), join(root, 'image', 'blobs', 'sha256', digest.slice(7)));
  t.true(c.read(digest).equals(data));
  t.deepEqual(c.list(), [digest]);

  const wrong = sha('something else');
  const e = await t.throwsAsync(c.ingest(chunked(data), { digest: wrong }));
  t.is(e.message, `digest mismatch for ${wrong}: got ${digest}`);
  await t.throwsAsync(c.ingest(chunked(data), { digest, size: data.length - 1 }), { message: /^digest mismatch for sha256:/ });
  await t.throwsAsync(c.ingest(chunked(data), { digest, size: data.length + 1 }), { message: /^digest mismatch for sha256:/ });
  t.deepEqual(readdirSync(c.dir), [digest.slice(7)], 'no temp file left behind');

  // concurrent ingests of one digest; an unchecked ingest returns the digest it computed
  const other = randomBytes(100_000);
  const got = await Promise.all([1, 2, 3, 4].map(() => c.ingest(chunked(other), { digest: sha(other) })));
  t.deepEqual(got, Array(4).fill(sha(other)));
  t.is(await c.ingest(chunked(other)), sha(other));
  t.is(readdirSync(c.dir).length, 2);

  // put/readJSON, and a corrupted blob is noticed on read
  const cfg = Buffer.from(JSON.stringify({ hello: 'world' }));
  t.is(c.put(cfg, { digest: sha(cfg), size: cfg.length }), sha(cfg));
  t.deepEqual(c.readJSON(sha(cfg)), { hello: 'world' });
  t.throws(() => c.put(cfg, { digest: wrong }), { message: `digest mismatch for ${wrong}: got ${sha(cfg)}` });
  writeFileSync(c.path(sha(cfg)), '{"hello":"tampered"}');
  t.throws(() => c.read(sha(cfg)), { message: /corrupted/ });
  c.delete(sha(cfg));
  t.false(c.has(sha(cfg)));
  t.throws(() => c.path('sha256:../../etc/passwd'), { message: /invalid digest/ });
});

// ---- layers -----------------------------------------------------------------------------------

test('layers: a base layer shared by two images is stored once; concurrent unpacks keep one copy', async t => {
  const root = tempRoot(t);
  const L = new S.LayerStore(root);
  const baseTar = tarball([{ path: 'etc/', type: 'Directory' }, { path: 'etc/os-release', body: 'ID=test\n' }]);
  const aTar = tarball([{ path: 'a.txt', body: 'a' }]);
  const bTar = tarball([{ path: 'b.txt', body: 'b' }]);

  const base = await L.unpack(chunked(gzipSync(baseTar)), OCI_GZIP, undefined);
  t.is(base.diffId, sha(baseTar), 'diff id: sha256 of the uncompressed tar');
  t.is(base.chainId, base.diffId, 'chain id of a base layer: its diff id');
  t.is(base.size, 8);
  const a = await L.unpack(chunked(aTar), OCI_TAR, base.chainId);
  t.is(a.chainId, sha(`${base.chainId} ${a.diffId}`));
  t.is(S.LayerStore.chainId(base.chainId, a.diffId), a.chainId);

  // image 2 pulls the same base: with the expected diff id it is recognised without unpacking,
  // without it, it is unpacked again and the existing copy stays
  const again = await L.unpack(chunked(gzipSync(baseTar)), OCI_GZIP, undefined, base.diffId);
  t.deepEqual(again, base);
  t.deepEqual(await L.unpack(chunked(baseTar), OCI_GZIP /* sniffed: not gzip */, undefined), base);
  const b = await L.unpack(chunked(bTar), OCI_TAR, base.chainId, sha(bTar));
  t.is(L.list().length, 3);
  t.deepEqual(L.lowerDirs(a.chainId), [L.diffDir(a.chainId), L.diffDir(base.chainId)]);
  t.deepEqual(L.lowerDirs(b.chainId), [L.diffDir(b.chainId), L.diffDir(base.chainId)]);
  t.is(readFileSync(join(L.diffDir(base.chainId), 'etc', 'os-release'), 'utf8'), 'ID=test\n');

  // the same new layer unpacked four times at once
  const cTar = tarball([{ path: 'c/', type: 'Directory' }, ...Array.from({ length: 50 }, (_, i) => ({ path: `c/f${i}`, body: 'x'.repeat(i * 100) }))]);
  const rs = await Promise.all([1, 2, 3, 4].map(() => L.unpack(chunked(gzipSync(cTar), 4096), OCI_GZIP, a.chainId)));
  t.true(rs.every(r => r.chainId === rs[0].chainId));
  t.is(L.list().length, 4);
  t.deepEqual(readdirSync(L.tmpDir), [], 'no temp dir left');

  // a wrong diff id: refused, nothing kept
  const wrong = sha('nope');
  await t.throwsAsync(L.unpack(chunked(bTar), OCI_TAR, a.chainId, wrong), { message: `layer ${wrong}: diff id mismatch: expected ${wrong}, got ${sha(bTar)}` });
  t.is(L.list().length, 4);
  t.deepEqual(readdirSync(L.tmpDir), []);
  // zstd is refused up front; a parent that does not exist too
  await t.throwsAsync(L.unpack(chunked(bTar), 'application/vnd.oci.image.layer.v1.tar+zstd', undefined), { message: /zstd.*not supported/ });
  await t.throwsAsync(L.unpack(chunked(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0])), OCI_TAR, undefined), { message: /zstd-compressed/ });
  await t.throwsAsync(L.unpack(chunked(bTar), OCI_TAR, wrong), { message: /parent layer .* not found/ });
  // a truncated archive
  await t.throwsAsync(L.unpack(chunked(cTar.subarray(0, 3000)), OCI_TAR, undefined), { message: /truncated tar archive/ });
  t.deepEqual(readdirSync(L.tmpDir), []);

  L.remove(b.chainId);
  t.false(L.has(b.chainId));
  t.is(L.list().length, 3);
});

test('layers: ownership, modes (setuid), times, xattrs, devices, fifos, symlinks and hardlinks are kept', async t => {
  const root = tempRoot(t);
  const L = new S.LayerStore(root);
  const tarBuf = tarball([
    { path: './', type: 'Directory', mode: 0o755 },
    { path: 'bin/', type: 'Directory', mode: 0o755, mtime: 1_600_000_000 },
    { path: 'bin/su', body: 'ELF', mode: 0o4755, uid: 0, gid: 0 },
    { path: 'home/u/', type: 'Directory', mode: 0o700, uid: 1234, gid: 5678 },
    { path: 'home/u/file', body: 'data', mode: 0o640, uid: 1234, gid: 5678, mtime: 1_500_000_000, pax: { 'SCHILY.xattr.user.test': Buffer.from([0, 1, 2, 0xff, 10]) } },
    { path: 'bin/sh', type: 'SymbolicLink', linkpath: '/bin/busybox' },
    { path: 'bin/su2', type: 'Link', linkpath: 'bin/su' },
    { path: 'dev/null', type: 'CharacterDevice', mode: 0o666, devmaj: 1, devmin: 3 },
    { path: 'run/fifo', type: 'FIFO', mode: 0o600 },
    { path: 'long/' + 'd'.repeat(120) + '/' + 'f'.repeat(150), body: 'long', pax: { path: 'long/' + 'd'.repeat(120) + '/' + 'f'.repeat(150) } },
  ]);
  const r = await L.unpack(chunked(tarBuf, 333), OCI_TAR, undefined);
  const d = L.diffDir(r.chainId);
  const su = statSync(join(d, 'bin/su'));
  t.is(su.mode & 0o7777, 0o4755, 'setuid kept (chmod after chown)');
  const f = statSync(join(d, 'home/u/file'));
  t.deepEqual([f.uid, f.gid, f.mode & 0o7777, f.mtimeMs], [1234, 5678, 0o640, 1_500_000_000_000]);
  t.deepEqual(S.fsops.lgetxattr(join(d, 'home/u/file'), 'user.test'), Buffer.from([0, 1, 2, 0xff, 10]));
  t.is(statSync(join(d, 'bin')).mtimeMs, 1_600_000_000_000, 'dir times set after their children');
  t.is(readlinkSync(join(d, 'bin/sh')), '/bin/busybox');
  t.is(statSync(join(d, 'bin/su2')).ino, su.ino);
  const dev = lstatSync(join(d, 'dev/null'));
  t.true(dev.isCharacterDevice());
  t.is(dev.rdev, (1 << 8) | 3);
  t.true(lstatSync(join(d, 'run/fifo')).isFIFO());
  t.is(readFileSync(join(d, 'long/' + 'd'.repeat(120) + '/' + 'f'.repeat(150)), 'utf8'), 'long');
  t.is(r.size, 3 + 4 + 4);
});

test('whiteouts: .wh.NAME hides a lower file, .wh..wh..opq makes a dir opaque (mounted snapshot)', async t => {
  const root = tempRoot(t);
  const L = new S.LayerStore(root);
  const l1 = await L.unpack(chunked(tarball([
    { path: 'a/', type: 'Directory' }, { path: 'a/f1', body: '1' }, { path: 'a/f2', body: '2' },
    { path: 'b/', type: 'Directory' }, { path: 'b/x', body: 'x' },
  ])), OCI_TAR, undefined);
  const l2 = await L.unpack(chunked(gzipSync(tarball([
    { path: 'a/', type: 'Directory' }, { path: 'a/.wh.f1' },
    { path: 'b/', type: 'Directory' }, { path: 'b/.wh..wh..opq' }, { path: 'b/y', body: 'y' },
  ]))), OCI_GZIP, l1.chainId);
  const d2 = L.diffDir(l2.chainId);
  const wh = lstatSync(join(d2, 'a/f1'));
  t.true(wh.isCharacterDevice() && wh.rdev === 0, 'a whiteout is a 0/0 character device');
  t.is(S.fsops.lgetxattr(join(d2, 'b'), 'trusted.overlay.opaque')?.toString(), 'y');
  t.false(existsSync(join(d2, 'b/.wh..wh..opq')));

  const merged = S.mountSnapshot(root, 'c1', L, l2.chainId);
  t.is(merged, S.snapshotDirs(root, 'c1').merged);
  t.is(S.mountSnapshot(root, 'c1', L, l2.chainId), merged, 'mounting again: idempotent');
  t.deepEqual(readdirSync(join(merged, 'a')), ['f2']);
  t.deepEqual(readdirSync(join(merged, 'b')), ['y']);
  t.is(mountsUnder(root).length, 1);
  S.unmountSnapshot(root, 'c1');
  S.unmountSnapshot(root, 'c1');
  t.deepEqual(mountsUnder(root), []);
  S.removeSnapshot(root, 'c1');
  t.false(existsSync(join(root, 'containers', 'c1')));

  // A whiteout hides lower layers only (OCI): a dir whited out and recreated in the same layer,
  // in either order, replaces the lower dir (opaque) and keeps this layer's content.
  const l3 = await L.unpack(chunked(tarball([
    { path: '.wh.a' }, { path: 'a/new', body: 'n' },
    { path: 'b/', type: 'Directory' }, { path: 'b/z', body: 'z' }, { path: '.wh.b' },
  ])), OCI_TAR, l1.chainId);
  const m3 = S.mountSnapshot(root, 'c4', L, l3.chainId, { readonly: true });
  t.deepEqual(readdirSync(join(m3, 'a')), ['new']);
  t.deepEqual(readdirSync(join(m3, 'b')), ['z']);
  S.removeSnapshot(root, 'c4');

  // read-only, and an image without layers
  const ro = S.mountSnapshot(root, 'c2', L, l1.chainId, { readonly: true });
  t.deepEqual(readdirSync(join(ro, 'a')).sort(), ['f1', 'f2']);
  t.throws(() => writeFileSync(join(ro, 'new'), 'x'), { code: 'EROFS' });
  S.removeSnapshot(root, 'c2');
  const empty = S.mountSnapshot(root, 'c3', L, undefined);
  t.deepEqual(readdirSync(empty), []);
  writeFileSync(join(empty, 'hello'), 'hi');
  S.removeSnapshot(root, 'c3');
  t.deepEqual(mountsUnder(root), []);
  t.deepEqual(readdirSync(join(root, 'containers')), []);
});

test('hostile tarballs are refused with a one-line error naming the entry; nothing lands outside, nothing is left', async t => {
  const root = tempRoot(t);
  const L = new S.LayerStore(root);
  const victim = victimDir(t);
  const up = '../'.repeat(30) + victim.slice(1);
  const passwd = statSync('/etc/passwd');
  const cases = [
    { name: 'dot-dot', entries: [{ path: '../evil', body: 'x' }], msg: /entry "\.\.\/evil": path escapes the layer$/ },
    { name: 'deep dot-dot', entries: [{ path: `a/${up}/evil`, body: 'x' }], msg: /path escapes the layer$/ },
    { name: 'absolute', entries: [{ path: `${victim}/abs-evil`, body: 'x' }], msg: /absolute path escapes the layer$/ },
    { name: 'symlink then through it', entries: [{ path: 'l', type: 'SymbolicLink', linkpath: victim }, { path: 'l/pwned', body: 'x' }], msg: /entry "l\/pwned": parent "l" is a symlink/ },
    { name: 'relative symlink dir then deeper', entries: [{ path: 'x/', type: 'Directory' }, { path: 'x/y', type: 'SymbolicLink', linkpath: up }, { path: 'x/y/z/pwned', body: 'x' }], msg: /parent "x\/y" is a symlink/ },
    { name: 'hardlink to /etc/passwd', entries: [{ path: 'h', type: 'Link', linkpath: '/etc/passwd' }], msg: /entry "h": absolute hardlink target "\/etc\/passwd" escapes the layer/ },
    { name: 'hardlink climbing out', entries: [{ path: 'h', type: 'Link', linkpath: '../../../../../../../../etc/passwd' }], msg: /hardlink target .* escapes the layer/ },
    { name: 'hardlink to a symlink pointing out', entries: [{ path: 's', type: 'SymbolicLink', linkpath: '/etc/passwd' }, { path: 'h', type: 'Link', linkpath: 's' }], msg: /symlink pointing outside the layer/ },
    { name: 'hardlink through a symlink', entries: [{ path: 'l', type: 'SymbolicLink', linkpath: '/etc' }, { path: 'h', type: 'Link', linkpath: 'l/passwd' }], msg: /parent "l" is a symlink/ },
    { name: 'whiteout through a symlink', entries: [{ path: 'w', type: 'SymbolicLink', linkpath: victim }, { path: 'w/.wh.x' }], msg: /parent "w" is a symlink/ },
    { name: 'opaque through a symlink', entries: [{ path: 'o', type: 'SymbolicLink', linkpath: victim }, { path: 'o/.wh..wh..opq' }], msg: /parent "o" is a symlink/ },
    { name: 'device through a symlink', entries: [{ path: 'v', type: 'SymbolicLink', linkpath: victim }, { path: 'v/null', type: 'CharacterDevice', devmaj: 1, devmin: 3 }], msg: /parent "v" is a symlink/ },
  ];
  for (const c of cases) {
    const buf = tarball(c.entries);
    const label = sha(c.name);
    const e = await t.throwsAsync(L.unpack(chunked(buf), OCI_TAR, undefined, undefined, { name: label }), undefined, c.name);
    if (!e) continue;
    t.regex(e.message, c.msg, c.name);
    t.true(e.message.startsWith(`layer ${label}: entry "`), `${c.name}: ${e.message}`);
    t.false(e.message.includes('\n'), `${c.name}: one line`);
    t.deepEqual(readdirSync(victim), [], `${c.name}: nothing written outside`);
    t.deepEqual(L.list(), [], `${c.name}: no layer kept`);
    t.deepEqual(readdirSync(L.tmpDir), [], `${c.name}: temp dir removed`);
  }
  // gzip'd hostile tar: same refusal
  await t.throwsAsync(L.unpack(chunked(gzipSync(tarball(cases[0].entries))), OCI_GZIP, undefined), { message: /path escapes the layer/ });
  const after = statSync('/etc/passwd');
  t.deepEqual([after.nlink, after.mtimeMs, after.size], [passwd.nlink, passwd.mtimeMs, passwd.size], '/etc/passwd untouched');
  // an entry that replaces a symlink is fine: the symlink goes, the file is created in its place
  const ok = await L.unpack(chunked(tarball([{ path: 'l', type: 'SymbolicLink', linkpath: victim }, { path: 'l', body: 'plain file' }])), OCI_TAR, undefined);
  t.is(readFileSync(join(L.diffDir(ok.chainId), 'l'), 'utf8'), 'plain file');
  t.deepEqual(readdirSync(victim), []);
});

// ---- diffToTar --------------------------------------------------------------------------------

test('diffToTar: a container\'s changes become a layer with whiteouts and opaque dirs, and round-trip', async t => {
  const root = tempRoot(t);
  const L = new S.LayerStore(root);
  const base = await L.unpack(chunked(tarball([
    { path: 'a/', type: 'Directory' }, { path: 'a/f1', body: '1' }, { path: 'a/f2', body: '2' },
    { path: 'b/', type: 'Directory' }, { path: 'b/x', body: 'x' }, { path: 'keep', body: 'k' },
  ])), OCI_TAR, undefined);
  const m = S.mountSnapshot(root, 'c1', L, base.chainId);
  rmSync(join(m, 'a/f1'));
  rmSync(join(m, 'b'), { recursive: true });
  mkdirSync(join(m, 'b'));
  writeFileSync(join(m, 'b/y'), 'y');
  mkdirSync(join(m, 'new'));
  writeFileSync(join(m, 'new/n.txt'), 'n');
  writeFileSync(join(m, 'new/big'), randomBytes(100_000));
  execFileSync('ln', [join(m, 'new/n.txt'), join(m, 'new/n2.txt')]);
  symlinkSync('../keep', join(m, 'new/link'));
  S.unmountSnapshot(root, 'c1');

  const { upper } = S.snapshotDirs(root, 'c1');
  const { file, diffId, size } = await L.diffToTar(upper);
  t.teardown(() => rmSync(file, { force: true }));
  t.true(file.startsWith(join(root, 'image', 'tmp') + '/'));
  const buf = readFileSync(file);
  t.is(size, buf.length);
  t.is(diffId, sha(buf));
  const entries = listTar(buf);
  const names = entries.map(e => e.path);
  t.true(names.includes('a/.wh.f1'), names.join(' '));
  t.true(names.includes('b/.wh..wh..opq'), names.join(' '));
  t.true(names.includes('b/y'));
  t.true(names.includes('new/n.txt'));
  t.false(names.includes('a/f1'));
  t.is(entries.find(e => e.path === 'new/n2.txt')?.type, 'link');
  t.is(entries.find(e => e.path === 'new/link')?.linkpath, '../keep');
  t.is(entries.find(e => e.path === 'b/y').body.toString(), 'y');
  t.false(names.some(n => n.startsWith('work')), 'only the upper dir');

  // the tar as a new layer on the base gives the same view as the container had
  const top = await L.unpack(chunked(buf), OCI_TAR, base.chainId, diffId);
  const m2 = S.mountSnapshot(root, 'c2', L, top.chainId, { readonly: true });
  t.deepEqual(readdirSync(join(m2, 'a')), ['f2']);
  t.deepEqual(readdirSync(join(m2, 'b')), ['y']);
  t.is(readFileSync(join(m2, 'new/n2.txt'), 'utf8'), 'n');
  t.is(readFileSync(join(m2, 'new/link'), 'utf8'), 'k');
  t.is(statSync(join(m2, 'new/big')).size, 100_000);
  S.removeSnapshot(root, 'c2');
  S.removeSnapshot(root, 'c1');

  // a hand-made upper dir: whiteout device, user.overlay.opaque, an xattr carried as SCHILY.xattr
  const hand = join(root, 'hand');
  mkdirSync(join(hand, 'd'), { recursive: true });
  S.fsops.mknod(join(hand, 'gone'), S.fsops.S_IFCHR, 0, 0);
  S.fsops.lsetxattr(join(hand, 'd'), 'user.overlay.opaque', 'y');
  writeFileSync(join(hand, 'cap'), 'x');
  S.fsops.lsetxattr(join(hand, 'cap'), 'user.note', Buffer.from('hello'));
  const h = await L.diffToTar(hand);
  t.teardown(() => rmSync(h.file, { force: true }));
  const he = listTar(readFileSync(h.file));
  t.deepEqual(he.map(e => e.path), ['cap', 'd/', 'd/.wh..wh..opq', '.wh.gone']);
  t.deepEqual(he[0].xattrs.get('user.note'), Buffer.from('hello'));
  t.false(he[1].xattrs.has('user.overlay.opaque'), 'overlay xattrs are not archived');
});

// ---- many layers ------------------------------------------------------------------------------

test('a snapshot of 130 layers mounts (past the 4 KiB mount option limit) and unmounts', async t => {
  const root = tempRoot(t);
  const L = new S.LayerStore(root);
  let parent;
  for (let i = 0; i < 130; i++) {
    const r = await L.unpack(chunked(tarball([{ path: `l${String(i).padStart(3, '0')}`, body: String(i) }])), OCI_TAR, parent);
    parent = r.chainId;
  }
  const lowers = L.lowerDirs(parent);
  t.is(lowers.length, 130);
  t.true(lowers.join(':').length > 4096, 'the lowerdir string alone exceeds a page');
  const m = S.mountSnapshot(root, 'many', L, parent);
  const names = readdirSync(m);
  t.is(names.length, 130);
  t.is(readFileSync(join(m, 'l000'), 'utf8'), '0');
  t.is(readFileSync(join(m, 'l129'), 'utf8'), '129');
  S.unmountSnapshot(root, 'many');
  t.deepEqual(mountsUnder(root), []);
  const ro = S.mountSnapshot(root, 'many-ro', L, parent, { readonly: true });
  t.is(readdirSync(ro).length, 130);
  S.removeSnapshot(root, 'many-ro');
  S.removeSnapshot(root, 'many');
  t.deepEqual(mountsUnder(root), []);
});

// ---- image records and gc ---------------------------------------------------------------------

async function makeImage(store, layerTars, { tags = [], digests = [] } = {}) {
  const layers = [];
  let parent;
  let size = 0;
  for (const tarBuf of layerTars) {
    const blob = gzipSync(tarBuf);
    const blobDigest = await store.content.ingest(chunked(blob), { digest: sha(blob), size: blob.length });
    const u = await store.layers.unpack(chunked(blob), OCI_GZIP, parent, sha(tarBuf));
    layers.push({ chainId: u.chainId, diffId: u.diffId, blobDigest, mediaType: OCI_GZIP, size: blob.length });
    parent = u.chainId;
    size += u.size;
  }
  const cfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map(l => l.diffId) }, n: randomBytes(4).toString('hex') }));
  const id = store.content.put(cfg);
  const man = Buffer.from(JSON.stringify({ schemaVersion: 2, config: { digest: id }, layers: layers.map(l => ({ digest: l.blobDigest })) }));
  const manifestDigest = store.content.put(man);
  const rec = {
    id, repoTags: tags, repoDigests: digests, manifestDigest, manifestMediaType: 'application/vnd.oci.image.manifest.v1+json',
    layers, created: new Date().toISOString(), size,
  };
  store.put(rec);
  return rec;
}

test('image records: find by id, short id, reference and repo digest; put merges; tags move; untag', async t => {
  const root = tempRoot(t);
  const store = new S.ImageStore(root);
  const base = tarball([{ path: 'base', body: 'b' }]);
  const a = await makeImage(store, [base], { tags: ['docker.io/library/a:latest'], digests: ['docker.io/library/a@sha256:' + 'a'.repeat(64)] });
  const b = await makeImage(store, [base, tarball([{ path: 'b', body: 'b' }])], { tags: ['docker.io/library/b:1'] });
  t.is(store.list().length, 2);
  t.is(store.find(a.id).id, a.id);
  t.is(store.find(a.id.slice(7, 19)).id, a.id);
  t.is(store.find('sha256:' + a.id.slice(7, 19)).id, a.id);
  t.is(store.find('docker.io/library/a:latest').id, a.id);
  t.is(store.find('docker.io/library/a@sha256:' + 'a'.repeat(64)).id, a.id);
  t.is(store.find('docker.io/library/nope:latest'), undefined);
  t.is(store.find('busybox'), undefined);

  store.put({ ...a, repoTags: ['docker.io/library/a:v2'], repoDigests: [] });
  t.deepEqual(store.find(a.id).repoTags, ['docker.io/library/a:latest', 'docker.io/library/a:v2']);
  t.is(store.find(a.id).repoDigests.length, 1);
  t.is(store.list().length, 2);

  store.tag(b.id, 'docker.io/library/a:latest');
  t.is(store.find('docker.io/library/a:latest').id, b.id, 'the tag moved');
  t.deepEqual(store.find(a.id).repoTags, ['docker.io/library/a:v2']);
  t.throws(() => store.tag('sha256:' + 'f'.repeat(64), 'x:y'), { message: /No such image/ });
  const lost = store.untag('docker.io/library/a:latest');
  t.is(lost.id, b.id);
  t.deepEqual(lost.repoTags, ['docker.io/library/b:1']);
  t.is(store.untag('docker.io/library/a:latest'), undefined);
  t.true(JSON.parse(readFileSync(join(root, 'image', 'images.json'), 'utf8')).images.length === 2);

  // withLock: re-entrant here, exclusive against another process
  const probe = () => { try { execFileSync('flock', ['-n', join(root, 'image', 'lock'), 'true']); return 'free'; } catch { return 'held'; } };
  t.is(store.withLock(() => store.withLock(() => { store.remove(a.id); return probe(); })), 'held');
  t.is(probe(), 'free');
  t.is(await store.withLock(async () => { await new Promise(r => setTimeout(r, 10)); return probe(); }), 'held');
  t.is(probe(), 'free');
  t.is(store.find(a.id), undefined);
});

test('gc frees the layers and blobs no image references, keeps shared and in-use ones', async t => {
  const root = tempRoot(t);
  const store = new S.ImageStore(root);
  const base = tarball([{ path: 'base', body: 'base layer' }]);
  const a = await makeImage(store, [base, tarball([{ path: 'a', body: 'aaaa' }])], { tags: ['docker.io/library/a:latest'] });
  const b = await makeImage(store, [base, tarball([{ path: 'b', body: 'bbbbbb' }])], { tags: ['docker.io/library/b:latest'] });
  t.is(store.layers.list().length, 3, 'the base layer is stored once');
  // a container's own layer (committed, no image yet) and an orphan blob
  const c = await store.layers.unpack(chunked(tarball([{ path: 'c', body: 'c' }])), OCI_TAR, a.layers[1].chainId);
  store.content.put(Buffer.from('orphan'));
  t.deepEqual(store.gc(new Set([c.chainId])), { layers: 0, blobs: 1, bytes: 6 });

  store.remove(b.id);
  const bBlobs = [b.id, b.manifestDigest, b.layers[1].blobDigest];
  const bytes = bBlobs.reduce((n, d) => n + store.content.size(d), 0) + 6;
  t.deepEqual(store.gc(new Set([c.chainId])), { layers: 1, blobs: 3, bytes });
  t.false(store.layers.has(b.layers[1].chainId));
  t.true(store.layers.has(a.layers[0].chainId), 'shared base kept');
  t.true(store.layers.has(c.chainId), 'in-use chain kept');
  for (const d of bBlobs) t.false(store.content.has(d));
  for (const d of [a.id, a.manifestDigest, ...a.layers.map(l => l.blobDigest)]) t.true(store.content.has(d));

  store.remove(a.id);
  const r = store.gc();
  t.is(r.layers, 3);
  t.is(r.blobs, 4);
  t.deepEqual(store.layers.list(), []);
  t.deepEqual(store.content.list(), []);
});
