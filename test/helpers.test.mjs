// Self-checks of the test helpers: assertClean must be able to fail.
// The first ones need no runtime and create (and remove) only their own mount, dirs and cgroup;
// the last one checks that assertClean sees a live container of the runtime under test.
import test from 'ava';
import { execFileSync, spawn as nodeSpawn } from 'node:child_process';
import { mkdirSync, rmdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  assertClean, findLeftovers, newRoot, tempDir, uniqueId, cgroupMounts, expectedCgroupDirs, sleep, makeBundle,
  rt, getState, describe, DEFAULT_CGROUP_PREFIX,
} from './helpers/index.mjs';
import { defaultSpec } from '../scripts/example-bundle.mjs';

test('assertClean passes when nothing is left', t => {
  const root = newRoot(t);
  const bundle = tempDir(t);
  assertClean(t, { root, id: uniqueId(), bundle });
});

test('assertClean detects a mount left under the bundle', async t => {
  const root = newRoot(t);
  const bundle = tempDir(t);
  const id = uniqueId();
  const mnt = join(bundle, 'rootfs', 'data');
  mkdirSync(mnt, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tsrun-selfcheck', mnt]);
  try {
    const problems = findLeftovers({ root, id, bundle });
    t.true(problems.some(p => p.includes('mount left under bundle') && p.includes(mnt)), problems.join('\n'));
    const attempt = await t.try(tt => assertClean(tt, { root, id, bundle }));
    const passed = attempt.passed;
    attempt.discard();
    t.false(passed, 'assertClean should have failed');
  } finally {
    execFileSync('umount', [mnt]);
  }
  t.deepEqual(findLeftovers({ root, id, bundle }), []);
});

test('assertClean detects a state entry left under --root', async t => {
  const root = newRoot(t);
  const id = uniqueId();
  mkdirSync(join(root, id));
  writeFileSync(join(root, id, 'state.json'), '{}');
  const attempt = await t.try(tt => assertClean(tt, { root, id }));
  const passed = attempt.passed;
  attempt.discard();
  t.false(passed);
  t.true(findLeftovers({ root, id }).some(p => p.includes(join(root, id))));
});

test('assertClean detects a cgroup dir and a process left in it', async t => {
  const id = uniqueId();
  const prefix = '/tsrun-selfcheck';
  const pidsMount = cgroupMounts().find(m => m.controllers.includes('pids'));
  if (!pidsMount) { t.pass('no pids hierarchy: skipped'); return; }
  const parent = join(pidsMount.mnt, prefix);
  const dir = join(parent, id);
  const madeParent = !existsSync(parent);
  t.true(expectedCgroupDirs(id, prefix).includes(dir));
  mkdirSync(dir, { recursive: true });
  const child = nodeSpawn('sleep', ['60'], { stdio: 'ignore' });
  try {
    t.true(findLeftovers({ id, cgroupPrefix: prefix }).some(p => p === `cgroup left: ${dir}`));
    writeFileSync(join(dir, 'cgroup.procs'), String(child.pid));
    const problems = findLeftovers({ id, cgroupPrefix: prefix });
    t.true(problems.some(p => p.startsWith(`process ${child.pid} still in a cgroup of ${id}`)), problems.join('\n'));
    const attempt = await t.try(tt => assertClean(tt, { id, cgroupPrefix: prefix }));
    const passed = attempt.passed;
    attempt.discard();
    t.false(passed);
  } finally {
    process.kill(child.pid, 'SIGKILL');
    await new Promise(r => child.on('close', r));
    for (let i = 0; i < 100; i++) { try { rmdirSync(dir); break; } catch { await sleep(20); } }
    if (madeParent) { try { rmdirSync(parent); } catch { /* someone else uses it */ } }
  }
  t.deepEqual(findLeftovers({ id, cgroupPrefix: prefix }), []);
});

test('makeBundle writes the runc-spec config with a private rootfs copy', async t => {
  const b = await makeBundle(t, c => { c.process.args = ['/probe', 'id']; });
  const spec = defaultSpec();
  t.deepEqual(b.config.linux.namespaces.map(n => n.type), ['pid', 'network', 'ipc', 'uts', 'mount', 'cgroup']);
  t.deepEqual(b.config.mounts, spec.mounts);
  t.false(b.config.process.terminal);
  t.deepEqual(b.config.process.args, ['/probe', 'id']);
  t.true(existsSync(join(b.rootfs, 'probe')));
  t.true(existsSync(join(b.rootfs, 'bin', 'sh')));
});

test('assertClean sees a live container of the runtime under test (state, cgroups, processes)', async t => {
  const root = newRoot(t);
  const r = rt(root);
  const id = uniqueId();
  const b = await makeBundle(t);
  const c = await r(['run', '-d', '--bundle', b.dir, id]);
  t.is(c.code, 0, describe(c));
  const { pid } = await getState(r, id);
  const problems = findLeftovers({ root, id, bundle: b.dir });
  t.true(problems.some(p => p.startsWith('state left under --root')), problems.join('\n'));
  t.true(problems.some(p => p.startsWith(`process ${pid} still in a cgroup of ${id}`)), problems.join('\n'));
  // The cgroup dirs at the default prefix (tsrun: /tsrun/<id>; runc: <own cgroup>/<id>).
  const expected = expectedCgroupDirs(id).filter(d => existsSync(d));
  t.true(expected.length > 0, `no cgroup dir at the expected prefix ${DEFAULT_CGROUP_PREFIX}`);
  for (const d of expected) t.true(problems.includes(`cgroup left: ${d}`));
  t.is((await r(['delete', '--force', id])).code, 0);
  assertClean(t, { root, id, bundle: b.dir });
});
