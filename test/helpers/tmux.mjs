// tmux drives the interactive tests: a real terminal whose keys and screen the test controls.
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { waitFor } from './index.mjs';

export const hasTmux = spawnSync('tmux', ['-V']).status === 0;

export function tmux(...args) {
  return execFileSync('tmux', args, { encoding: 'utf8' });
}

/** The visible text of a session's pane. */
export const screen = session => tmux('capture-pane', '-t', session, '-p');

/**
 * Resizes the session's window and waits until `stty size` inside says so. The new size
 * travels tmux → the tsrun client → the pty asynchronously; `stty size` is asked again each
 * second, so a loaded machine that is slow to pass it on is waited for, not failed.
 */
export async function resizeAndCheck(session, cols, rows) {
  tmux('resize-window', '-t', session, '-x', String(cols), '-y', String(rows));
  const want = new RegExp(`\\b${rows} ${cols}\\b`);
  let asked = 0;
  await waitFor(() => {
    if (want.test(screen(session))) return true;
    if (Date.now() - asked >= 1000) { tmux('send-keys', '-t', session, 'stty size', 'Enter'); asked = Date.now(); }
    return false;
  }, { timeout: 15_000, what: `the new size ${rows} ${cols}` });
}

/** Waits until a process with exactly this command line exists (e.g. the `sleep 31` typed into a pty). */
export async function waitForCommand(args) {
  const want = args.join('\0') + '\0';
  await waitFor(() => readdirSync('/proc').some(p => {
    if (!/^\d+$/.test(p)) return false;
    try { return readFileSync(`/proc/${p}/cmdline`, 'utf8') === want; } catch { return false; }
  }), { timeout: 15_000, what: `a process "${args.join(' ')}"` });
}
