// One import for the tests: import { ... } from './helpers/index.mjs';
import { existsSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO, IS_TSRUN, describe, rt } from './runtime.mjs';
import { newRoot, tempDir, ensureImage } from './bundle.mjs';

export * from './runtime.mjs';
export * from './bundle.mjs';
export * from './clean.mjs';

export const sleep = ms => new Promise(r => setTimeout(r, ms));

/** Polls fn() (sync or async) until it returns a truthy value; returns that value. */
export async function waitFor(fn, { timeout = 30_000, interval = 25, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try { last = await fn(); } catch (e) { last = undefined; if (Date.now() > end) throw e; }
    if (last) return last;
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(interval);
  }
}

/** `state ID` parsed; throws (with the runtime's output) if it fails or is not JSON. */
export async function getState(r, id) {
  const res = await r(['state', id], { timeout: 10_000 });
  if (res.code !== 0) throw new Error(`state ${id} failed: ${describe(res)}`);
  try { return JSON.parse(res.stdout); } catch { throw new Error(`state ${id}: not JSON: ${describe(res)}`); }
}

export function waitStatus(r, id, status, timeout = 30_000) {
  return waitFor(async () => (await getState(r, id)).status === status, { timeout, what: `${id} to be ${status}` });
}

/**
 * Tests that only make sense for tsrun (its own features, or where it deliberately
 * differs from runc) are declared with tsrunOnly(test)('title', fn): skipped under
 * TSRUN=runc / TSRUN=crun.
 */
export function tsrunOnly(test) {
  return IS_TSRUN ? test : test.skip;
}

/** Path of a helper binary built by scripts/make-test-image.sh (test/.images/bin/NAME). */
export function helperBin(name) {
  const p = join(REPO, 'test', '.images', 'bin', name);
  if (!existsSync(p)) execFileSync(join(REPO, 'scripts', 'make-test-image.sh'), { stdio: 'inherit' });
  return p;
}

export function readlinkNs(pid, ns) {
  return execFileSync('readlink', [`/proc/${pid}/ns/${ns}`], { encoding: 'utf8' }).trim();
}

/** Asserts a runtime failure looks like a CLI error, not a crash. */
export function assertCliError(t, res, { match, oneLine = true } = {}) {
  t.not(res.code, 0, `expected a non-zero exit:\n${describe(res)}`);
  t.false(res.timedOut, 'timed out');
  t.false(res.stderr.includes('    at '), `stack trace on stderr:\n${res.stderr}`);
  const lines = res.stderr.split('\n').filter(l => l.trim());
  t.true(lines.length >= 1, 'expected an error message on stderr');
  if (oneLine) t.is(lines.length, 1, `expected exactly one line on stderr, got:\n${res.stderr}`);
  if (match) t.regex(res.stderr, match);
}

export function readText(p) {
  return readFileSync(p, 'utf8');
}

/**
 * A fresh --root with the busybox test rootfs imported as the image "test/bb:1"; every container
 * left in that root is force-removed after the test. Returns { root, r }.
 */
export async function withEngineImage(t) {
  const root = newRoot(t);
  const r = rt(root);
  const tarball = join(tempDir(t), 'rootfs.tar');
  execFileSync('tar', ['-C', ensureImage(), '-cf', tarball, '.']);
  t.is((await r(['import', tarball, 'test/bb:1'])).code, 0);
  t.teardown(async () => {
    const ids = (await r(['ps', '-aq', '--no-trunc'])).stdout.trim().split('\n').filter(Boolean);
    if (ids.length) await r(['rm', '-f', ...ids]);
  });
  return { root, r };
}
