// Many containers at once, and a killed `create` that the next command repairs.
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { rt, newRoot, makeBundle, uniqueId, assertClean, describe, sleep, tsrunOnly, TSRUN } from './helpers/index.mjs';

test('12 containers run at once, all succeed, nothing is left', async t => {
  const root = newRoot(t);
  const r = rt(root);
  const b = await makeBundle(t, { args: ['/probe', 'exit', '0'] });
  const ids = Array.from({ length: 12 }, () => uniqueId());
  const results = await Promise.all(ids.map(id => r(['run', '--bundle', b.dir, id], { timeout: 60_000 })));
  results.forEach((res, i) => t.is(res.code, 0, `${ids[i]}: ${describe(res)}`));
  for (const id of ids) assertClean(t, { root, id, bundle: b.dir });
});

tsrunOnly(test)('a create killed at any moment is repaired by delete --force', async t => {
  const root = newRoot(t);
  const r = rt(root);
  const b = await makeBundle(t, { args: ['/probe', 'sleep'] });
  const ids = [];
  for (const delay of [0, 5, 10, 20, 30, 45, 60, 90]) {
    const id = uniqueId();
    ids.push(id);
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    const p = spawn(TSRUN, ['--root', root, 'create', '--bundle', b.dir, id], { stdio: 'ignore', env });
    const closed = new Promise(res => p.on('close', res));
    await sleep(delay);
    p.kill('SIGKILL');
    await closed;
  }
  for (const id of ids) {
    const res = await r(['delete', '--force', id]);
    // a create killed before it reserved the id leaves nothing, so "does not exist" is fine too
    t.true(res.code === 0 || /does not exist/.test(res.stderr), `${id}: ${describe(res)}`);
    assertClean(t, { root, id, bundle: b.dir });
  }
  const files = d => (existsSync(d) ? readdirSync(d, { withFileTypes: true }).flatMap(e => (e.isDirectory() ? files(join(d, e.name)) : [join(d, e.name)])) : []);
  t.deepEqual(files(root), [], 'files left under --root');
});
