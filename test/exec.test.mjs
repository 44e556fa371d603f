// exec: --process FILE, --cwd/--env/--user, the exit status, --detach with --pid-file, and the cgroup.
import test from 'ava';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { rt, newRoot, makeBundle, uniqueId, assertClean, getState, waitStatus, describe, waitFor, assertCliError } from './helpers/index.mjs';

async function running(t) {
  const root = newRoot(t);
  const r = rt(root);
  const id = uniqueId();
  const b = await makeBundle(t);
  t.is((await r(['run', '-d', '--bundle', b.dir, id])).code, 0);
  await waitStatus(r, id, 'running');
  return { root, r, id, b };
}

test('exec with flags: --cwd, --env, --user, and the exit status comes back', async t => {
  const { root, r, id, b } = await running(t);
  const e = await r(['exec', '--cwd', '/tmp', '--env', 'FOO=bar', '--user', '1000:1000', id, '/bin/sh', '-c', 'pwd; echo $FOO; id -u; id -g; exit 7']);
  t.is(e.code, 7, describe(e));
  t.is(e.stdout, '/tmp\nbar\n1000\n1000\n');
  t.is((await r(['delete', '--force', id])).code, 0);
  assertClean(t, { root, id, bundle: b.dir });
});

test('exec --process FILE runs that process; unknown command fails with a clear error', async t => {
  const { root, r, id, b } = await running(t);
  const pf = join(b.dir, 'process.json');
  writeFileSync(pf, JSON.stringify({ args: ['/bin/sh', '-c', 'echo from-process-file $X'], env: ['X=1', 'PATH=/bin'], cwd: '/', user: { uid: 0, gid: 0 } }));
  const e = await r(['exec', '--process', pf, id]);
  t.is(e.code, 0, describe(e));
  t.is(e.stdout, 'from-process-file 1\n');
  const bad = await r(['exec', id, 'no-such-command']);
  assertCliError(t, bad, { match: /executable file not found/ });
  t.is((await r(['delete', '--force', id])).code, 0);
  assertClean(t, { root, id, bundle: b.dir });
});

test('exec --detach --pid-file: the process runs in the container cgroup and is listed by ps', async t => {
  const { root, r, id, b } = await running(t);
  const pidFile = join(b.dir, 'exec.pid');
  const e = await r(['exec', '--detach', '--pid-file', pidFile, id, '/probe', 'sleep']);
  t.is(e.code, 0, describe(e));
  const pid = Number(readFileSync(pidFile, 'utf8'));
  t.true(pid > 0);
  const ps = await r(['ps', '--format', 'json', id]);
  t.true(JSON.parse(ps.stdout).includes(pid), `ps does not list the exec'd process: ${ps.stdout}`);
  const cg = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  t.true(cg.includes(id), `exec'd process not in the container's cgroups:\n${cg}`);
  const { pid: init } = await getState(r, id);
  t.not(pid, init);
  t.is((await r(['delete', '--force', id])).code, 0);
  await waitFor(() => { try { readFileSync(`/proc/${pid}/stat`); return false; } catch { return true; } }, { what: 'exec process gone' });
  assertClean(t, { root, id, bundle: b.dir });
});

test('concurrent execs each get their own exit status (the pid of the forked process, not the intermediate one)', async t => {
  const { root, r, id, b } = await running(t);
  for (let round = 0; round < 3; round++) {
    const res = await Promise.all(Array.from({ length: 8 }, (_, i) =>
      r(['exec', id, '/bin/sh', '-c', `echo $(hostname) >/dev/null; exit ${i + 3}`], { timeout: 60_000 })));
    res.forEach((e, i) => t.is(e.code, i + 3, describe(e)));
  }
  t.is((await r(['delete', '--force', id])).code, 0);
  assertClean(t, { root, id, bundle: b.dir });
});

test('exec passes its stdin on (runc\'s exec has no -i)', async t => {
  const { root, r, id, b } = await running(t);
  const e = await r(['exec', id, 'cat'], { input: 'through\n' });
  t.is(e.code, 0, describe(e));
  t.is(e.stdout, 'through\n');
  t.is((await r(['delete', '--force', id])).code, 0);
  assertClean(t, { root, id, bundle: b.dir });
});
