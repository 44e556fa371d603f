// Per-test state roots and bundles, with one teardown per test that
//   1. force-deletes whatever containers are still known in that test's roots,
//   2. refuses to remove a bundle that still has something mounted under it (the test
//      fails with the list of mounts: hiding it with a lazy unmount would hide a bug),
//   3. removes bundles and roots.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, chmodSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultSpec } from '../../scripts/example-bundle.mjs';
import { REPO, run, closeRoot } from './runtime.mjs';

export const IMAGE = process.env.TSRUN_TEST_IMAGE || join(REPO, 'test', '.images', 'busybox', 'rootfs');
const TMP = process.env.TSRUN_TEST_TMP || tmpdir();
const TEST_TIMEOUT = Number(process.env.TSRUN_TEST_TIMEOUT || 150_000);

/** `t-` + 10 random hex digits: unique per test, safe as a container id and a cgroup name. */
export function uniqueId(prefix = 't') {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

let imageChecked = false;
export function ensureImage() {
  if (imageChecked) return IMAGE;
  if (!process.env.TSRUN_TEST_IMAGE) {
    // Fast (a stamp check) when the image is current; builds it otherwise.
    const r = spawnSync(join(REPO, 'scripts', 'make-test-image.sh'), [IMAGE], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`scripts/make-test-image.sh failed:\n${r.stdout}${r.stderr}`);
  }
  if (!existsSync(join(IMAGE, 'probe'))) throw new Error(`test image ${IMAGE} has no /probe`);
  imageChecked = true;
  return IMAGE;
}

/** Mount points (from /proc/self/mountinfo) at or below dir. */
export function mountsUnder(dir) {
  const unescape = s => s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean)
    .map(l => unescape(l.split(' ')[4]))
    .filter(m => m === dir || m.startsWith(dir.endsWith('/') ? dir : dir + '/'));
}

const contexts = new WeakMap();
function ctx(t) {
  let c = contexts.get(t);
  if (c) return c;
  c = { roots: [], bundles: [] };
  contexts.set(t, c);
  // A per-test timeout below ava's global one (240 s in package.json): a timed-out test still
  // runs its teardown (so its containers are deleted) and is reported as a plain TAP failure,
  // whereas ava's global timeout kills the worker (no teardown) and crashes ava 6's TAP reporter.
  t.timeout(TEST_TIMEOUT);
  t.teardown(async () => {
    const problems = [];
    for (const root of c.roots) {
      // A timed-out test body may still be running runtime commands on this root.
      await closeRoot(root);
      // Containers a failed test left behind: ask the runtime, and also look at the directory.
      const ids = new Set();
      const l = await run(['--root', root, 'list', '-q'], { timeout: 10_000, afterClose: true }).catch(() => null);
      for (const line of l?.stdout?.split('\n') ?? []) if (line.trim()) ids.add(line.trim());
      try {
        for (const e of readdirSync(root, { withFileTypes: true })) if (e.isDirectory()) ids.add(e.name);
      } catch { /* root gone */ }
      for (const id of ids) await run(['--root', root, 'delete', '--force', id], { timeout: 15_000, afterClose: true }).catch(() => {});
    }
    for (const b of c.bundles) {
      const m = mountsUnder(b);
      if (m.length) { problems.push(`still mounted under bundle ${b} (left in place):\n  ${m.join('\n  ')}`); continue; }
      rmSync(b, { recursive: true, force: true });
    }
    for (const root of c.roots) {
      const m = mountsUnder(root);
      if (m.length) { problems.push(`still mounted under state root ${root}:\n  ${m.join('\n  ')}`); continue; }
      rmSync(root, { recursive: true, force: true });
    }
    if (problems.length) throw new Error(problems.join('\n'));
  });
  return c;
}

/** A fresh, empty state directory for `--root`, removed after the test. */
export function newRoot(t) {
  const root = mkdtempSync(join(TMP, 'tsrun-t-root-'));
  ctx(t).roots.push(root);
  return root;
}

/**
 * A bundle directory with its own copy of the test rootfs and a config.json from
 * scripts/example-bundle.mjs (what `runc spec` generates, terminal false, + cgroup ns).
 *   makeBundle(t, cfg => { cfg.process.args = ['/probe', 'caps']; })
 *   makeBundle(t, { args: ['/probe', 'id'], mutate: cfg => ..., readonly: false })
 * mutate(cfg, { dir, rootfs }) may be async and may also edit the rootfs copy.
 * Returns { dir, rootfs, config, configPath, writeConfig(cfg) }.
 */
export async function makeBundle(t, mutateOrOpts) {
  const opts = typeof mutateOrOpts === 'function' ? { mutate: mutateOrOpts } : (mutateOrOpts ?? {});
  const image = ensureImage();
  const dir = mkdtempSync(join(TMP, 'tsrun-t-bundle-'));
  ctx(t).bundles.push(dir);
  chmodSync(dir, 0o755); // user-namespaced containers must be able to reach rootfs/
  const rootfs = join(dir, 'rootfs');
  execFileSync('cp', ['-a', image, rootfs]);
  const config = defaultSpec({ args: opts.args ?? ['/probe', 'pause'], ...(opts.readonly !== undefined ? { readonly: opts.readonly } : {}) });
  if (opts.mutate) await opts.mutate(config, { dir, rootfs });
  const configPath = join(dir, 'config.json');
  const writeConfig = cfg => writeFileSync(configPath, typeof cfg === 'string' ? cfg : JSON.stringify(cfg, null, 2));
  writeConfig(config);
  return { dir, rootfs, config, configPath, writeConfig };
}

/** A scratch directory (not a bundle) removed after the test, with the same mount check. */
export function tempDir(t, prefix = 'tsrun-t-tmp-') {
  const d = mkdtempSync(join(TMP, prefix));
  ctx(t).bundles.push(d);
  return d;
}

export function isDir(p) {
  try { return statSync(p).isDirectory(); } catch { return false; }
}
