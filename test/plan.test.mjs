// `tsrun plan`, `run --dry-run` (tsrun-only: skipped when TSRUN is runc/crun, which have no such
// feature) and step-numbered errors (the failure itself is checked for runc too).
//
// Contract these tests assume:
//   tsrun plan BUNDLE                      numbered steps, one per line: "N. <step> ..." (also
//                                          accepted: "N) ", "N: ", "[N] " or "N " before the step);
//                                          some step mentions pivot_root, a later one execve.
//   tsrun plan --format json BUNDLE        JSON: an array of steps, or an object with a "steps" array,
//                                          one element per numbered line of the text plan.
//   tsrun run --dry-run --bundle B ID      prints the same plan (same steps in the same order)
//                                          and starts nothing.
//   a failing step                         stderr: "... step K/N: mount <...>: <reason>" (one line).
import test from 'ava';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  rt, newRoot, makeBundle, uniqueId, assertClean, assertCliError, describe, tsrunOnly, sleep, IS_TSRUN,
} from './helpers/index.mjs';

const only = tsrunOnly(test);
const STEP = /^\s*\[?(\d+)[\].):]?\s+(.*\S)\s*$/;

function parseSteps(stdout) {
  const steps = [];
  for (const line of stdout.split('\n')) {
    const m = line.match(STEP);
    if (m) steps.push({ n: Number(m[1]), text: m[2] });
  }
  return steps;
}

/** The step's kind: its first word after an optional "[actor]" tag (e.g. "mount", "pivot_root"). */
const kind = s => s.text.replace(/^\[[^\]]*\]\s*/, '').split(/[\s:(]/)[0];

only('tsrun-only: plan prints numbered steps including pivot_root and execve', async t => {
  const r = rt(newRoot(t));
  const b = await makeBundle(t);
  const res = await r(['plan', b.dir]);
  t.is(res.code, 0, describe(res));
  const steps = parseSteps(res.stdout);
  t.true(steps.length >= 5, `too few steps:\n${res.stdout}`);
  t.deepEqual(steps.map(s => s.n), steps.map((_, i) => i + 1), 'steps are numbered 1..N');
  const pivot = steps.findIndex(s => /pivot_root/.test(s.text));
  const execve = steps.findIndex(s => /execve/.test(s.text));
  t.true(pivot >= 0, `no pivot_root step:\n${res.stdout}`);
  t.true(execve > pivot, `execve must come after pivot_root:\n${res.stdout}`);
  t.true(steps.some(s => /\/proc/.test(s.text) && /mount/.test(s.text)), 'a step mounts /proc');
});

only('tsrun-only: plan --format json parses as steps', async t => {
  const r = rt(newRoot(t));
  const b = await makeBundle(t);
  const text = await r(['plan', b.dir]);
  const json = await r(['plan', '--format', 'json', b.dir]);
  t.is(json.code, 0, describe(json));
  const parsed = JSON.parse(json.stdout);
  const steps = Array.isArray(parsed) ? parsed : parsed.steps;
  t.true(Array.isArray(steps), `expected an array of steps or {steps: [...]}, got ${json.stdout.slice(0, 200)}`);
  t.is(steps.length, parseSteps(text.stdout).length);
  t.true(JSON.stringify(steps).includes('pivot_root'));
  t.true(JSON.stringify(steps).includes('execve'));
});

only('tsrun-only: run --dry-run prints the same plan and starts nothing', async t => {
  const root = newRoot(t);
  const r = rt(root);
  const id = uniqueId();
  const b = await makeBundle(t, { readonly: false, args: ['/bin/sh', '-c', 'echo ran > /marker'] });
  const plan = await r(['plan', b.dir]);
  const dry = await r(['run', '--dry-run', '--bundle', b.dir, id]);
  t.is(dry.code, 0, describe(dry));
  const a = parseSteps(plan.stdout);
  const d = parseSteps(dry.stdout);
  t.true(d.length > 0, describe(dry));
  t.deepEqual(d.map(kind), a.map(kind), 'dry-run shows the steps of `plan`');
  await sleep(200);
  t.false(existsSync(join(b.rootfs, 'marker')), 'dry-run ran the process');
  t.is((await r(['list', '-q'])).stdout.trim(), '');
  t.not((await r(['state', id])).code, 0);
  assertClean(t, { root, id, bundle: b.dir });
});

// Runs for runc too (nothing left behind, one-line error); the "step K/N" format is tsrun's.
test('a failing mount step fails run with one line and leaves nothing behind', async t => {
  const root = newRoot(t);
  const r = rt(root);
  const id = uniqueId();
  const b = await makeBundle(t, c => {
    c.mounts.push({ destination: '/data', type: 'nosuchfs', source: 'none', options: [] });
  });
  const res = await r(['run', '--bundle', b.dir, id]);
  assertCliError(t, res, { match: IS_TSRUN ? /step \d+\/\d+: mount .*: / : /\/data/ });
  if (IS_TSRUN) {
    const m = res.stderr.match(/step (\d+)\/(\d+): mount (.*): /);
    t.true(Number(m[1]) <= Number(m[2]));
    t.regex(m[3], /\/data|nosuchfs/);
    const plan = parseSteps((await r(['plan', b.dir])).stdout);
    t.is(plan.length, Number(m[2]), 'N in "step K/N" is the number of steps in the plan');
  }
  t.is((await r(['list', '-q'])).stdout.trim(), '');
  assertClean(t, { root, id, bundle: b.dir });
});

test('create with a failing mount step also leaves nothing behind', async t => {
  const root = newRoot(t);
  const r = rt(root);
  const id = uniqueId();
  const b = await makeBundle(t, c => {
    c.mounts.push({ destination: '/data', type: 'nosuchfs', source: 'none' });
  });
  const res = await r(['create', '--bundle', b.dir, id]);
  assertCliError(t, res, { match: IS_TSRUN ? /step \d+\/\d+: mount .*: / : /\/data/ });
  t.not((await r(['state', id])).code, 0);
  t.is((await r(['list', '-q'])).stdout.trim(), '');
  assertClean(t, { root, id, bundle: b.dir });
});
