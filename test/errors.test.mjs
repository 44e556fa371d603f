// Bad input: every failure is a non-zero exit with ONE line on stderr (no stack trace),
// and leaves nothing behind.
import test from 'ava';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  rt, newRoot, makeBundle, uniqueId, assertClean, assertCliError, getState, describe, IS_TSRUN, tempDir,
} from './helpers/index.mjs';
import { TSRUN } from './helpers/runtime.mjs';

async function createFails(t, b, match) {
  const root = newRoot(t);
  const r = rt(root);
  const id = uniqueId();
  const res = await r(['create', '--bundle', b.dir ?? b, id]);
  assertCliError(t, res, { match });
  const l = await r(['list', '-q']);
  t.is(l.stdout.trim(), '', 'a failed create must not leave a container in list');
  t.not((await r(['state', id])).code, 0, 'a failed create must not leave a state');
  assertClean(t, { root, id, bundle: b.dir ?? b });
  return res;
}

test('malformed config.json', async t => {
  const b = await makeBundle(t);
  writeFileSync(b.configPath, '{"ociVersion": "1.0.2", "process": {');
  await createFails(t, b, IS_TSRUN ? /config\.json/ : undefined);
});

test('bundle without config.json', async t => {
  const dir = tempDir(t);
  await createFails(t, dir, /config\.json/);
});

test('missing rootfs', async t => {
  const b = await makeBundle(t);
  rmSync(b.rootfs, { recursive: true });
  await createFails(t, b, /rootfs/);
});

test('unknown namespace type "foo"', async t => {
  const b = await makeBundle(t, c => { c.linux.namespaces.push({ type: 'foo' }); });
  await createFails(t, b, /foo/);
});

test('unknown container id: state/start/kill/delete/exec say "does not exist"', async t => {
  const root = newRoot(t);
  const r = rt(root);
  const id = `nope-${uniqueId()}`;
  for (const args of [['state', id], ['start', id], ['kill', id, 'KILL'], ['delete', id], ['exec', id, '/bin/true'], ['pause', id], ['ps', id]]) {
    const res = await r(args);
    t.log(args[0], JSON.stringify(res.stderr));
    assertCliError(t, res, { match: /does not exist/ });
  }
  assertClean(t, { root, id });
});

test('duplicate id: the second create fails, the first container is unaffected', async t => {
  const root = newRoot(t);
  const r = rt(root);
  const id = uniqueId();
  const b1 = await makeBundle(t);
  const b2 = await makeBundle(t);
  const c1 = await r(['create', '--bundle', b1.dir, id]);
  t.is(c1.code, 0, describe(c1));
  const before = await getState(r, id);
  const c2 = await r(['create', '--bundle', b2.dir, id]);
  assertCliError(t, c2, { match: /already exists/ });
  const after = await getState(r, id);
  t.is(after.status, 'created');
  t.is(after.pid, before.pid);
  t.is(after.bundle, b1.dir);
  t.is((await r(['start', id])).code, 0, 'the first container still starts');
  t.is((await getState(r, id)).status, 'running');
  t.is((await r(['delete', '--force', id])).code, 0);
  assertClean(t, { root, id, bundle: b1.dir });
  assertClean(t, { root, id, bundle: b2.dir });
});

test('a process that does not exist in the rootfs', async t => {
  const root = newRoot(t);
  const r = rt(root);
  const id = uniqueId();
  const b = await makeBundle(t, { args: ['/no/such/binary'] });
  const res = await r(['run', '--bundle', b.dir, id]);
  assertCliError(t, res, { match: /no such file|not found|ENOENT/i });
  assertClean(t, { root, id, bundle: b.dir });
});

test('unknown command', async t => {
  const r = rt(newRoot(t));
  const res = await r(['frobnicate']);
  t.not(res.code, 0, describe(res));
  t.false(res.stderr.includes('    at '), res.stderr);
});

test('a state root that is a file, not a directory', async t => {
  const dir = tempDir(t);
  const file = join(dir, 'not-a-dir');
  writeFileSync(file, '');
  const res = await rt(file)(['list']);
  if (res.code === 0) { t.pass('runtime tolerates it'); return; }
  assertCliError(t, res);
});

test('a reader that went away (tsrun ... | head): exit 141 like SIGPIPE, no stack trace', async t => {
  if (!IS_TSRUN) return t.pass('tsrun-only');
  const { spawn } = await import('node:child_process');
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const root = newRoot(t);
  for (const args of [['--help'], ['ps', '-a'], ['images']]) {
    const child = spawn(TSRUN, ['--root', root, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    // our end of its stdout closes now, long before node has started: its first write gets EPIPE
    child.stdout.destroy();
    let err = '';
    child.stderr.on('data', (d) => { err += d; });
    const code = await new Promise((res) => child.on('close', (c) => res(c)));
    t.is(code, 141, `${args.join(' ')}: ${err}`);
    t.is(err, '', 'no message, no stack trace');
  }
});
