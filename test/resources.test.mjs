// Resource limits through cgroups: memory (OOM kill + OOM reporting) and pids.
import test from 'ava';
import { existsSync } from 'node:fs';
import {
  rt, newRoot, makeBundle, uniqueId, assertClean, getState, waitStatus, waitFor, describe, sleep, tsrunOnly,
  cgroupMounts,
} from './helpers/index.mjs';

const MiB = 1024 * 1024;

/** 32 MiB of memory and no swap on top of it (memory+swap = memory). */
function limitMemory(c) {
  const memory = { limit: 32 * MiB };
  const v1 = cgroupMounts().find(m => m.version === 1 && m.controllers.includes('memory'));
  // On cgroup v1 swap can only be limited where memsw accounting exists; v2 always can.
  if (!v1 || existsSync(`${v1.mnt}/memory.memsw.limit_in_bytes`)) memory.swap = 32 * MiB;
  c.linux.resources.memory = memory;
}

test('memory limit 32 MiB: memhog 200 is OOM-killed and run exits 137', async t => {
  const root = newRoot(t);
  const r = rt(root);
  const id = uniqueId();
  const b = await makeBundle(t, { args: ['/probe', 'memhog', '200'], mutate: limitMemory });
  const res = await r(['run', '--bundle', b.dir, id], { timeout: 60_000 });
  t.is(res.code, 137, describe(res));
  t.false(res.stdout.includes('done'), 'memhog finished: the limit was not applied');
  assertClean(t, { root, id, bundle: b.dir });
});

test('memory limit: a small allocation under the limit succeeds (control)', async t => {
  const root = newRoot(t);
  const r = rt(root);
  const id = uniqueId();
  const b = await makeBundle(t, { args: ['/probe', 'memhog', '8'], mutate: limitMemory });
  const res = await r(['run', '--bundle', b.dir, id]);
  t.is(res.code, 0, describe(res));
  t.is(res.stdout, 'done\n');
  assertClean(t, { root, id, bundle: b.dir });
});

test('events reports {"type":"oom","id":ID} when the container hits its memory limit', async t => {
  const root = newRoot(t);
  const r = rt(root);
  const id = uniqueId();
  const b = await makeBundle(t, { args: ['/probe', 'memhog', '200'], mutate: limitMemory });
  t.is((await r(['create', '--bundle', b.dir, id])).code, 0);
  const ev = r.spawn(['events', '--interval', '200ms', id], { timeout: 60_000 });
  t.teardown(() => ev.kill());
  // The first periodic stats line shows `events` is attached; don't start allocating before.
  await ev.waitFor(/"type":\s*"stats"/, 5_000).catch(() => sleep(500));
  t.is((await r(['start', id])).code, 0);
  const [line] = await ev.waitFor(/^\{.*"type":\s*"oom".*\}$/m, 20_000);
  const e = JSON.parse(line);
  t.is(e.type, 'oom');
  t.is(e.id, id);
  await waitStatus(r, id, 'stopped', 20_000);
  ev.kill();
  await ev.done;
  t.is((await r(['delete', id])).code, 0);
  assertClean(t, { root, id, bundle: b.dir });
});

tsrunOnly(test)('tsrun-only: state of an OOM-killed detached container has "oomKilled": true', async t => {
  const root = newRoot(t);
  const r = rt(root);
  const id = uniqueId();
  const b = await makeBundle(t, { args: ['/probe', 'memhog', '200'], mutate: limitMemory });
  t.is((await r(['create', '--bundle', b.dir, id])).code, 0);
  t.is((await r(['start', id])).code, 0);
  await waitStatus(r, id, 'stopped', 20_000);
  const st = await getState(r, id);
  t.is(st.oomKilled, true, JSON.stringify(st));
  t.is((await r(['delete', id])).code, 0);
  assertClean(t, { root, id, bundle: b.dir });
});

tsrunOnly(test)('tsrun-only: a container that exits normally has "oomKilled": false', async t => {
  const root = newRoot(t);
  const r = rt(root);
  const id = uniqueId();
  const b = await makeBundle(t, { args: ['/probe', 'memhog', '4'], mutate: limitMemory });
  t.is((await r(['create', '--bundle', b.dir, id])).code, 0);
  t.is((await r(['start', id])).code, 0);
  await waitStatus(r, id, 'stopped', 20_000);
  const st = await getState(r, id);
  t.is(st.oomKilled, false, JSON.stringify(st));
  t.is((await r(['delete', id])).code, 0);
  assertClean(t, { root, id, bundle: b.dir });
});

test('pids limit 10: forkbomb 50 stops with EAGAIN', async t => {
  const root = newRoot(t);
  const r = rt(root);
  const id = uniqueId();
  const b = await makeBundle(t, { args: ['/probe', 'forkbomb', '50'], mutate: c => { c.linux.resources.pids = { limit: 10 }; } });
  const res = await r(['run', '--bundle', b.dir, id]);
  t.is(res.code, 0, describe(res));
  const m = res.stdout.match(/^forked (\d+) (\w+)$/m);
  t.truthy(m, describe(res));
  t.is(m[2], 'EAGAIN');
  t.true(Number(m[1]) < 10, `forked ${m[1]} children under a limit of 10`);
  t.true(Number(m[1]) >= 5, `only ${m[1]} forks succeeded`);
  assertClean(t, { root, id, bundle: b.dir });
});

test('without a pids limit, forkbomb 50 succeeds (control)', async t => {
  const root = newRoot(t);
  const r = rt(root);
  const id = uniqueId();
  const b = await makeBundle(t, { args: ['/probe', 'forkbomb', '50'] });
  const res = await r(['run', '--bundle', b.dir, id]);
  t.is(res.code, 0, describe(res));
  t.is(res.stdout, 'forked 50 none\n');
  assertClean(t, { root, id, bundle: b.dir });
});
