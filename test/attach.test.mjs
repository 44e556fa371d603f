// attach to detached containers (the supervisor's attach socket): without a tty (piped stdin,
// output, exit code, signal proxy), `start -a -i`, and with a tty through tmux (window size, the
// ctrl-p ctrl-q detach keys leave the container running, the exit code comes back).
import test from 'ava';
import { hasTmux, tmux, resizeAndCheck } from './helpers/tmux.mjs';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { uniqueId, tempDir, describe, tsrunOnly, waitFor, sleep, tsrunCommand, withEngineImage } from './helpers/index.mjs';

const t2 = tsrunOnly(test);
const t3 = hasTmux ? t2 : test.skip;
const state = async (r, name) => JSON.parse((await r(['inspect', name])).stdout)[0].State;

t2('attach without a tty: piped stdin reaches `run -d -i`, live output only, the exit code', async t => {
  const { r } = await withEngineImage(t);
  const name = uniqueId('att');
  const run = await r(['run', '-d', '-i', '--name', name, 'test/bb:1', 'sh', '-c', 'echo before; read line; echo "got $line"; echo oops >&2; exit 3']);
  t.is(run.code, 0, describe(run));
  await waitFor(async () => (await r(['logs', name])).stdout.includes('before'), { what: 'first line' });
  const at = await r(['attach', name], { input: 'hello\n' });
  t.is(at.code, 3, describe(at));
  t.is(at.stdout, 'got hello\n', 'attach shows what comes after it attached, not the log');
  t.is(at.stderr, 'oops\n');
  t.is((await state(r, name)).ExitCode, 3);
  const again = await r(['attach', name]);
  t.not(again.code, 0);
  t.regex(again.stderr, /You cannot attach to a stopped container, start it first/);
  // --no-stdin: output only, our input is not passed on
  const n2 = uniqueId('nostdin');
  t.is((await r(['run', '-d', '-i', '--name', n2, 'test/bb:1', 'sh', '-c', 'while :; do echo tick; sleep 0.1; done & read l; echo "got $l"; kill %1; exit 2'])).code, 0);
  const ns = r.spawn(['attach', '--no-stdin', n2], { input: 'typed\n' });
  await ns.waitFor('tick', 15_000);
  await sleep(500);
  t.false(ns.stdout().includes('got'), 'the input reached the container');
  const fed = await r(['attach', n2], { input: 'now\n' });
  t.is(fed.code, 2, describe(fed));
  t.regex(fed.stdout, /got now\n/);
  const first = await ns.done;
  t.is(first.code, 2, 'both attached clients see the exit');
  t.false(first.stdout.includes('got typed'));
});

t2('start -a -i: attached before the start (no output missed), stdin EOF closes the container stdin', async t => {
  const { r } = await withEngineImage(t);
  const name = uniqueId('sai');
  t.is((await r(['create', '-i', '--name', name, 'test/bb:1', 'sh', '-c', 'echo first; cat; echo done; exit 5'])).code, 0);
  const st = await r(['start', '-a', '-i', name], { input: 'a\nb\n' });
  t.is(st.code, 5, describe(st));
  t.is(st.stdout, 'first\na\nb\ndone\n');
  // -a alone: output from the very first byte, stdin stays /dev/null-like (not forwarded)
  const n2 = uniqueId('sa');
  t.is((await r(['create', '--name', n2, 'test/bb:1', 'sh', '-c', 'echo one; echo two >&2; exit 2'])).code, 0);
  const sa = await r(['start', '-a', n2]);
  t.is(sa.code, 2, describe(sa));
  t.is(sa.stdout, 'one\n');
  t.is(sa.stderr, 'two\n');
});

t2('attach --sig-proxy (default): SIGTERM to attach reaches the container; --sig-proxy=false does not', async t => {
  const { r } = await withEngineImage(t);
  const name = uniqueId('sig');
  t.is((await r(['run', '-d', '--name', name, 'test/bb:1', 'sh', '-c', 'trap "echo got-term; exit 9" TERM; while :; do echo tick; sleep 0.1; done'])).code, 0);
  // output reaches attach once it is connected, with its signal handlers in place
  const noProxy = r.spawn(['attach', '--sig-proxy=false', name]);
  await noProxy.waitFor('tick', 15_000);
  noProxy.kill('SIGTERM');
  await noProxy.done;
  await sleep(300);
  t.is((await state(r, name)).Status, 'running', '--sig-proxy=false forwarded the signal');
  const a = r.spawn(['attach', name]);
  await a.waitFor('tick', 15_000);
  a.kill('SIGTERM');
  const res = await a.done;
  t.is(res.code, 9, describe(res));
  t.regex(res.stdout, /^(tick\n)+got-term\n$/);
  t.is((await state(r, name)).ExitCode, 9);
});

t3('attach with a tty: window size, ctrl-p ctrl-q detaches (container keeps running), exit code', async t => {
  const { root, r } = await withEngineImage(t);
  const name = uniqueId('tty');
  const run = await r(['run', '-it', '-d', '--name', name, 'test/bb:1', 'sh']); // -it: -i and -t
  t.is(run.code, 0, describe(run));
  const session = uniqueId('att');
  const out = join(tempDir(t), 'exit');
  const cmd = `${tsrunCommand(root)} attach ${name}`;
  tmux('new-session', '-d', '-s', session, '-x', '90', '-y', '25', `${cmd}; echo EXIT=$? > ${out}; sleep 60`);
  t.teardown(() => { try { tmux('kill-session', '-t', session); } catch { /* gone */ } });
  const screen = () => tmux('capture-pane', '-t', session, '-p');
  await sleep(500);
  tmux('send-keys', '-t', session, 'stty size; tty', 'Enter');
  await waitFor(() => /25 90/.test(screen()), { timeout: 15_000, what: 'stty size 25 90' });
  t.regex(screen(), /\/dev\/pts\/0/);
  await resizeAndCheck(session, 70, 20);
  tmux('send-keys', '-t', session, 'C-p', 'C-q');
  await waitFor(() => existsSync(out) && readFileSync(out, 'utf8').includes('EXIT=0'), { what: 'attach to end with 0 after ctrl-p ctrl-q' });
  t.regex(screen(), /read escape sequence/);
  t.is((await state(r, name)).Status, 'running', 'detaching stopped the container');
  // attach again (a ctrl-p alone is passed on), leave with `exit 4`
  tmux('respawn-pane', '-k', '-t', session, `${cmd}; echo EXIT=$? > ${out}.2; sleep 60`);
  await sleep(700);
  tmux('send-keys', '-t', session, 'echo mark-$((6*7))', 'Enter');
  await waitFor(() => /mark-42/.test(screen()), { what: 'output after re-attaching' });
  tmux('send-keys', '-t', session, 'exit 4', 'Enter');
  await waitFor(() => existsSync(`${out}.2`) && readFileSync(`${out}.2`, 'utf8').includes('EXIT=4'), { what: 'exit status 4' });
  t.is((await state(r, name)).ExitCode, 4);
});
