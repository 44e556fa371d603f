// Interactive containers through a real terminal (tmux): raw mode, window size, Ctrl-C reaching the
// container, the exit code; `run -it IMAGE` and `exec -it`.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { hasTmux, tmux, resizeAndCheck, waitForCommand } from './helpers/tmux.mjs';
import { rt, newRoot, uniqueId, tempDir, ensureImage, tsrunCommand, tsrunOnly, waitFor, sleep, mountsUnder } from './helpers/index.mjs';

const t2 = hasTmux ? tsrunOnly(test) : test.skip;

t2('run -it: a pty with the window size, ^C reaches the container, the exit code comes back', async t => {
  const root = newRoot(t);
  const r = rt(root);
  const tarball = join(tempDir(t), 'rootfs.tar');
  execFileSync('tar', ['-C', ensureImage(), '-cf', tarball, '.']);
  t.is((await r(['import', tarball, 'test/tty:1'])).code, 0);
  const session = uniqueId('tty');
  const out = join(tempDir(t), 'exit');
  tmux('new-session', '-d', '-s', session, '-x', '100', '-y', '30',
    `${tsrunCommand(root)} run --rm -it test/tty:1 sh; echo EXIT=$? > ${out}; sleep 60`);
  t.teardown(() => { try { tmux('kill-session', '-t', session); } catch { /* gone */ } });
  const screen = () => tmux('capture-pane', '-t', session, '-p');
  await waitFor(() => screen().includes('#'), { timeout: 20_000, what: 'the shell prompt' });
  tmux('send-keys', '-t', session, 'tty; stty size', 'Enter');
  await waitFor(() => /30 100/.test(screen()), { what: 'stty size 30 100' });
  t.regex(screen(), /\/dev\/pts\/0/);
  await resizeAndCheck(session, 80, 20);
  tmux('send-keys', '-t', session, 'sleep 31', 'Enter');
  await waitForCommand(['sleep', '31']); // ^C before it runs would reach only the shell
  tmux('send-keys', '-t', session, 'C-c');
  await waitFor(() => /\^C/.test(screen()), { what: '^C echoed' });
  tmux('send-keys', '-t', session, 'exit 7', 'Enter');
  await waitFor(() => { try { return readFileSync(out, 'utf8').includes('EXIT=7'); } catch { return false; } }, { timeout: 15_000, what: 'exit status 7' });
  t.deepEqual(mountsUnder(root), []);
});

t2('exec -it: a pty with the window size, ^C reaches the exec\'d process, the exit code comes back', async t => {
  const root = newRoot(t);
  const r = rt(root);
  const tarball = join(tempDir(t), 'rootfs.tar');
  execFileSync('tar', ['-C', ensureImage(), '-cf', tarball, '.']);
  t.is((await r(['import', tarball, 'test/tty:1'])).code, 0);
  const name = uniqueId('ex');
  t.is((await r(['run', '-d', '--name', name, 'test/tty:1', 'sleep', '1000'])).code, 0);
  t.teardown(() => r(['rm', '-f', name]));
  const session = uniqueId('extty');
  const out = join(tempDir(t), 'exit');
  tmux('new-session', '-d', '-s', session, '-x', '110', '-y', '35',
    `${tsrunCommand(root)} exec -it ${name} sh; echo EXIT=$? > ${out}; sleep 60`);
  t.teardown(() => { try { tmux('kill-session', '-t', session); } catch { /* gone */ } });
  const screen = () => tmux('capture-pane', '-t', session, '-p');
  await waitFor(() => screen().includes('#'), { timeout: 20_000, what: 'the shell prompt' });
  tmux('send-keys', '-t', session, 'tty; stty size; echo pid=$$', 'Enter');
  await waitFor(() => /35 110/.test(screen()), { what: 'stty size 35 110' });
  t.regex(screen(), /\/dev\/pts\/\d+/);
  t.notRegex(screen(), /pid=1\b/, 'the exec\'d shell is not the container\'s init');
  await resizeAndCheck(session, 75, 22);
  tmux('send-keys', '-t', session, 'sleep 32; echo after-sleep-$?', 'Enter');
  await waitForCommand(['sleep', '32']);
  tmux('send-keys', '-t', session, 'C-c');
  await waitFor(() => /\^C/.test(screen()), { what: '^C echoed' });
  tmux('send-keys', '-t', session, 'exit 5', 'Enter');
  await waitFor(() => { try { return readFileSync(out, 'utf8').includes('EXIT=5'); } catch { return false; } }, { timeout: 15_000, what: 'exit status 5' });
  const st = JSON.parse((await r(['inspect', name])).stdout)[0].State;
  t.is(st.Status, 'running', 'the container outlives its exec');
});

t2('stats on a terminal redraws in place (the screen is cleared before each table)', async t => {
  const root = newRoot(t);
  const r = rt(root);
  const tarball = join(tempDir(t), 'rootfs.tar');
  execFileSync('tar', ['-C', ensureImage(), '-cf', tarball, '.']);
  t.is((await r(['import', tarball, 'test/tty:1'])).code, 0);
  const name = uniqueId('stt');
  t.is((await r(['run', '-d', '--name', name, 'test/tty:1', 'sleep', '1000'])).code, 0);
  t.teardown(() => r(['rm', '-f', name]));
  const session = uniqueId('sttty');
  tmux('new-session', '-d', '-s', session, '-x', '150', '-y', '30', `${tsrunCommand(root)} stats ${name}; sleep 60`);
  t.teardown(() => { try { tmux('kill-session', '-t', session); } catch { /* gone */ } });
  const screen = () => tmux('capture-pane', '-t', session, '-p');
  await waitFor(() => screen().includes(name), { timeout: 15_000, what: 'the first table' });
  await sleep(3500); // three more refreshes
  const s = screen();
  t.is(s.split('\n').filter(l => l.startsWith('CONTAINER ID')).length, 1, s);
  t.regex(s, /^CONTAINER ID\s+NAME\s+CPU %/);
  t.regex(s, new RegExp(`\\s${name}\\s+\\d+\\.\\d\\d%\\s`));
});

t2('run -it: ctrl-p ctrl-q detaches and leaves the container running; attach gets it back', async t => {
  const root = newRoot(t);
  const r = rt(root);
  const tarball = join(tempDir(t), 'rootfs.tar');
  execFileSync('tar', ['-C', ensureImage(), '-cf', tarball, '.']);
  t.is((await r(['import', tarball, 'test/tty:1'])).code, 0);
  const name = uniqueId('det');
  t.teardown(() => r(['rm', '-f', name]));
  const session = uniqueId('dettty');
  const out = join(tempDir(t), 'exit');
  const tsrun = tsrunCommand(root);
  tmux('new-session', '-d', '-s', session, '-x', '100', '-y', '30', `${tsrun} run -it --name ${name} test/tty:1 sh; echo EXIT=$? > ${out}; sleep 60`);
  t.teardown(() => { try { tmux('kill-session', '-t', session); } catch { /* gone */ } });
  const screen = () => tmux('capture-pane', '-t', session, '-p');
  await waitFor(() => screen().includes('#'), { timeout: 20_000, what: 'the shell prompt' });
  tmux('send-keys', '-t', session, 'echo one > /tmp/mark; stty size', 'Enter');
  await waitFor(() => /30 100/.test(screen()), { what: 'stty size 30 100' });
  tmux('send-keys', '-t', session, 'C-p', 'C-q');
  await waitFor(() => { try { return readFileSync(out, 'utf8').includes('EXIT=0'); } catch { return false; } }, { what: 'run to end with 0 after ctrl-p ctrl-q' });
  t.regex(screen(), /read escape sequence/);
  t.is(JSON.parse((await r(['inspect', name])).stdout)[0].State.Status, 'running');
  tmux('respawn-pane', '-k', '-t', session, `${tsrun} attach --detach-keys ctrl-x ${name}; echo EXIT=$? > ${out}.2; sleep 60`);
  await sleep(700);
  tmux('send-keys', '-t', session, 'cat /tmp/mark', 'Enter');
  await waitFor(() => /^one$/m.test(screen()), { what: 'the same shell after attach' });
  tmux('send-keys', '-t', session, 'exit 3', 'Enter');
  await waitFor(() => { try { return readFileSync(`${out}.2`, 'utf8').includes('EXIT=3'); } catch { return false; } }, { timeout: 15_000, what: 'exit status 3' });
  t.is(JSON.parse((await r(['inspect', name])).stdout)[0].State.ExitCode, 3);
});
