// Image commands through the real CLI: import, images, run IMAGE, commit (whiteouts), history,
// inspect, tag, save/load round trip, rmi reference counting, prune. Registry pull/push are in
// registry.test.mjs.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { rt, newRoot, uniqueId, tempDir, ensureImage, describe, tsrunOnly, mountsUnder } from './helpers/index.mjs';

const t2 = tsrunOnly(test);

async function withImage(t) {
  const root = newRoot(t);
  const r = rt(root);
  const dir = tempDir(t);
  const tarball = join(dir, 'rootfs.tar');
  execFileSync('tar', ['-C', ensureImage(), '-cf', tarball, '.']);
  const res = await r(['import', tarball, 'test/busybox:1']);
  t.is(res.code, 0, describe(res));
  t.regex(res.stdout, /^sha256:[0-9a-f]{64}\n$/);
  return { root, r, dir, id: res.stdout.trim() };
}

function layerDirs(root) {
  const d = join(root, 'image', 'layers');
  return existsSync(d) ? readdirSync(d).filter(n => !n.startsWith('.')) : [];
}

t2('import, images, inspect, history, run IMAGE', async t => {
  const { root, r, id } = await withImage(t);
  const ls = await r(['images']);
  t.is(ls.code, 0, describe(ls));
  t.regex(ls.stdout, /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE\n/);
  t.regex(ls.stdout, new RegExp(`test/busybox\\s+1\\s+${id.slice(7, 19)}\\s+(Less than a second|\\d+ seconds?) ago\\s+\\d`));
  const tbl = await r(['images', '--format', 'table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}']);
  t.is(tbl.stdout, `REPOSITORY     TAG   IMAGE ID\ntest/busybox   1     ${id.slice(7, 19)}\n`, describe(tbl));
  const one = await r(['images', '--format', '{{.Repository}}:{{.Tag}} {{.Size}}']);
  t.regex(one.stdout, /^test\/busybox:1 [\d.]+[kM]B\n$/);
  const insp = JSON.parse((await r(['image', 'inspect', 'test/busybox:1'])).stdout)[0];
  t.is(insp.Id, id);
  t.deepEqual(insp.RepoTags, ['test/busybox:1']);
  t.is(insp.RootFS.Type, 'layers');
  t.is(insp.RootFS.Layers.length, 1);
  t.is(insp.Os, 'linux');
  const fmt = await r(['inspect', '--format', '{{.Os}} {{json .RootFS.Type}}', id.slice(7, 19)]);
  t.is(fmt.stdout, 'linux "layers"\n');
  const run = await r(['run', '--rm', 'test/busybox:1', '/bin/sh', '-c', 'echo hello; cat /etc/hostname 2>/dev/null; echo pid=$$']);
  t.is(run.code, 0, describe(run));
  t.regex(run.stdout, /^hello\n(.*\n)?pid=1\n$/);
  const e = await r(['run', '--rm', '-e', 'A=b', '-w', '/tmp', '--entrypoint', '/bin/sh', 'test/busybox:1', '-c', 'echo $A $(pwd)']);
  t.is(e.stdout, 'b /tmp\n', describe(e));
  const ex = await r(['run', '--rm', 'test/busybox:1', 'sh', '-c', 'exit 3']);
  t.is(ex.code, 3);
  const nf = await r(['run', '--rm', 'test/busybox:1', 'no-such-binary']);
  t.is(nf.code, 127, describe(nf));
  const ni = await r(['run', '--rm', '--pull', 'never', 'no/such-image:1']);
  t.is(ni.code, 125);
  t.regex(ni.stderr, /No such image/);
  t.deepEqual(readdirSync(join(root, 'containers')), [], 'run --rm left a container');
  t.deepEqual(mountsUnder(root), []);
  const hist = await r(['history', 'test/busybox:1']);
  t.regex(hist.stdout, /^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT\n/);
  t.regex(hist.stdout, new RegExp(id.slice(7, 19)));
});

t2('commit and export: changes and deletions become a layer; history grows; run the new image', async t => {
  const { root, r, dir } = await withImage(t);
  const name = uniqueId('c');
  const res = await r(['run', '--name', name, 'test/busybox:1', '/bin/sh', '-c', 'echo new > /newfile; rm /bin/vi; mkdir -p /d && echo x > /d/x']);
  t.is(res.code, 0, describe(res));
  const c = await r(['commit', '--change', 'CMD ["/bin/cat","/newfile"]', '-m', 'my change', name, 'test/committed:2']);
  t.is(c.code, 0, describe(c));
  const out = await r(['run', '--rm', 'test/committed:2']);
  t.is(out.stdout, 'new\n', describe(out));
  const gone = await r(['run', '--rm', 'test/committed:2', '/bin/sh', '-c', 'test -e /bin/vi && echo present || echo whiteout; cat /d/x']);
  t.is(gone.stdout, 'whiteout\nx\n', describe(gone));
  const insp = JSON.parse((await r(['image', 'inspect', 'test/committed:2'])).stdout)[0];
  t.is(insp.RootFS.Layers.length, 2);
  t.deepEqual(insp.Config.Cmd, ['/bin/cat', '/newfile']);
  const hist = await r(['history', 'test/committed:2']);
  t.regex(hist.stdout, /my change/);
  t.is(hist.stdout.trim().split('\n').length, 3);
  // the base image is in use by the container: rmi refuses without -f
  const rmi = await r(['rmi', 'test/busybox:1']);
  t.not(rmi.code, 0);
  t.regex(rmi.stderr, /must force|is using/);
  // export: the container's whole filesystem, its own changes included
  const exp = join(dir, 'export.tar');
  const ex = await r(['export', '-o', exp, name]);
  t.is(ex.code, 0, describe(ex));
  const files = execFileSync('tar', ['-tf', exp], { encoding: 'utf8' }).split('\n');
  t.true(files.some(f => /^(\.\/)?newfile$/.test(f)), 'export lacks the container\'s new file');
  t.true(files.some(f => /^(\.\/)?bin\/busybox$/.test(f)), 'export lacks the image files');
  t.false(files.some(f => /^(\.\/)?bin\/vi$/.test(f)), 'export shows a deleted file');
  t.deepEqual(mountsUnder(root), [], 'export left the snapshot mounted');
  t.is((await r(['rm', name])).code, 0);
  t.deepEqual(mountsUnder(root), []);
});

t2('save/load round trip, tag, rmi reference counting, prune', async t => {
  const { root, r, dir, id } = await withImage(t);
  t.is((await r(['tag', 'test/busybox:1', 'test/other:latest'])).code, 0);
  const archive = join(dir, 'save.tar');
  const s = await r(['save', '-o', archive, 'test/busybox:1']);
  t.is(s.code, 0, describe(s));
  const listing = execFileSync('tar', ['-tf', archive], { encoding: 'utf8' });
  t.regex(listing, /index\.json/);
  t.regex(listing, /manifest\.json/);
  // rmi by one tag only untags; the layer stays while a tag is left
  const u = await r(['rmi', 'test/other']);
  t.is(u.stdout, 'Untagged: test/other:latest\n', describe(u));
  t.is(layerDirs(root).length, 1);
  const d = await r(['rmi', 'test/busybox:1']);
  t.regex(d.stdout, /Untagged: test\/busybox:1\nDeleted: sha256:/);
  t.deepEqual(layerDirs(root), [], 'rmi of the last tag must free the layer');
  t.is((await r(['images', '-q'])).stdout, '');
  // load it back: same id, same tag, runs
  const l = await r(['load', '-i', archive]);
  t.is(l.code, 0, describe(l));
  t.is(l.stdout, 'Loaded image: test/busybox:1\n');
  const insp = JSON.parse((await r(['image', 'inspect', 'test/busybox:1'])).stdout)[0];
  t.is(insp.Id, id);
  t.is((await r(['run', '--rm', 'test/busybox:1', 'true'])).code, 0);
  // untagged images are dangling: prune removes them
  t.is((await r(['tag', 'test/busybox:1', 'test/x:1'])).code, 0);
  t.is((await r(['rmi', 'test/busybox:1'])).code, 0);
  t.is((await r(['rmi', 'test/x:1'])).code, 0);
  const p = await r(['image', 'prune', '-a'], { input: 'y\n' });
  t.regex(p.stdout, /^WARNING! This will remove all images without at least one container associated to them\.\nAre you sure you want to continue\? \[y\/N\] /);
  t.regex(p.stdout, /Total reclaimed space/);
  t.deepEqual(layerDirs(root), []);
});

t2('bad references and unknown images give one-line errors', async t => {
  const root = newRoot(t);
  const r = rt(root);
  for (const args of [['pull', 'UPPER/case'], ['image', 'inspect', 'nope:1'], ['rmi', 'nope'], ['tag', 'nope', 'x'], ['history', 'nope']]) {
    const res = await r(args);
    t.not(res.code, 0, args.join(' '));
    t.false(res.stderr.includes('    at '), res.stderr);
    t.is(res.stderr.trim().split('\n').length, 1, `${args.join(' ')}: ${res.stderr}`);
  }
});
