// Which runtime binary the tests drive, and how to run it.
//
//   TSRUN=/path/to/binary  (or a bare name on PATH, e.g. TSRUN=runc)   default: <repo>/bin/tsrun
//
// Every child gets the environment minus NODE_EXTRA_CA_CERTS (which makes Node read
// the CA bundle at startup and slows every tsrun invocation down).
import { spawn as nodeSpawn } from 'node:child_process';
import { accessSync, constants, readSync } from 'node:fs';
import { basename, delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function which(name) {
  if (name.includes('/')) return resolve(name);
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    try { accessSync(p, constants.X_OK); return p; } catch { /* next */ }
  }
  return name; // let spawn report ENOENT
}

export const TSRUN = which(process.env.TSRUN || join(REPO, 'bin', 'tsrun'));

/** 'tsrun' | 'runc' | 'crun' — decides which tests apply and the default cgroup prefix. */
export const RUNTIME_KIND = /^runc/.test(basename(TSRUN)) ? 'runc' : /^crun/.test(basename(TSRUN)) ? 'crun' : 'tsrun';
export const IS_TSRUN = RUNTIME_KIND === 'tsrun';

/**
 * Where the runtime puts a container's cgroup when config.json has no cgroupsPath:
 * tsrun uses "/tsrun/<id>" in every hierarchy; runc uses "<the caller's own cgroup>/<id>"
 * (written here as "relative"). Override with TSRUN_CGROUP_PREFIX.
 */
export const DEFAULT_CGROUP_PREFIX = process.env.TSRUN_CGROUP_PREFIX || (IS_TSRUN ? '/tsrun' : 'relative');

export function childEnv(extra = {}) {
  // containers started by tests stay off the network unless a test says otherwise (the network
  // tests run tsrun inside a namespace of their own): the suite must not touch the host's network
  // (the caller's own TSRUN_DEFAULT_NETWORK does not count: only a test's `extra` does).
  const env = { ...process.env, TSRUN_DEFAULT_NETWORK: 'none', ...extra };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

/**
 * The runtime as a shell command line, with childEnv()'s settings, for commands that a test
 * starts through a shell it does not spawn itself (tmux): `${tsrunCommand(root)} run -it ...`.
 */
export function tsrunCommand(root) {
  return `env -u NODE_EXTRA_CA_CERTS TSRUN_DEFAULT_NETWORK=none ${TSRUN} --root ${root}`;
}

/**
 * Starts a child and collects its output. Returns
 *   { child, pid, stdout(), stderr(), waitFor(regex|string, ms), done: Promise<result> }
 * result = { code, signal, stdout, stderr, timedOut }. `code` is the exit status, or null
 * when the child died of a signal. The child is SIGKILLed (by its pid) after `timeout` ms.
 */
export function spawnCmd(cmd, args, { input, timeout = 30_000, env, cwd, stdio } = {}) {
  const child = nodeSpawn(cmd, args, { env: env ?? childEnv(), cwd, stdio: stdio ?? ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters = [];
  const poke = () => {
    for (const w of [...waiters]) {
      const m = typeof w.re === 'string' ? (out.includes(w.re) ? [w.re] : null) : out.match(w.re);
      if (m) { waiters.splice(waiters.indexOf(w), 1); clearTimeout(w.timer); w.resolve(m); }
    }
  };
  child.stdout?.setEncoding('utf8').on('data', d => { out += d; poke(); });
  child.stderr?.setEncoding('utf8').on('data', d => { err += d; });
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; try { child.kill('SIGKILL'); } catch { /* gone */ } }, timeout);
  // Resolve on 'exit' rather than 'close': a detached container (create, run -d) inherits
  // the runtime's stdout/stderr and keeps the pipes open long after the runtime exited.
  // Output written before the exit is still collected during a short grace period.
  const streamsEnded = Promise.all([child.stdout, child.stderr].filter(Boolean)
    .map(s => new Promise(r => { s.on('end', r); s.on('close', r); s.on('error', r); })));
  const done = new Promise(res => {
    let spawnError = null;
    let finished = false;
    child.on('error', e => {
      spawnError = e;
      if (child.pid === undefined) child.emit('exit', null, null);
    });
    child.on('exit', async (code, signal) => {
      if (finished) return;
      finished = true;
      await Promise.race([streamsEnded, new Promise(r => setTimeout(r, 250))]);
      // Whatever the child wrote before it exited is in the pipe by now. A loaded machine can
      // keep this loop away from the pipe for longer than the grace period, so read what is
      // left directly (the fd is non-blocking: EAGAIN when empty) before closing the stream.
      await new Promise(r => setImmediate(r)); // chunks already read are emitted first
      out += drainPipe(child.stdout);
      err += drainPipe(child.stderr);
      poke();
      child.stdout?.destroy();
      child.stderr?.destroy();
      clearTimeout(timer);
      for (const w of waiters.splice(0)) { clearTimeout(w.timer); w.reject(new Error(`process exited (code ${code}, signal ${signal}) before printing ${w.re}; stdout: ${JSON.stringify(out)} stderr: ${JSON.stringify(err)}`)); }
      if (spawnError) err += `spawn ${cmd}: ${spawnError.message}\n`;
      res({ code: spawnError ? 127 : code, signal, stdout: out, stderr: err, timedOut });
    });
  });
  if (child.stdin) {
    child.stdin.on('error', () => { /* EPIPE when the child does not read */ });
    if (input !== undefined && input !== null) child.stdin.end(input);
    else if (input === null) { /* caller keeps stdin open */ }
    else child.stdin.end();
  }
  return {
    child,
    pid: child.pid,
    stdout: () => out,
    stderr: () => err,
    done,
    /** Resolves with the match once stdout matches; rejects after ms or if the child exits. */
    waitFor(re, ms = 30_000) {
      return new Promise((resolveW, rejectW) => {
        const w = { re, resolve: resolveW, reject: rejectW };
        w.timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          rejectW(new Error(`timed out after ${ms} ms waiting for ${re} on stdout: ${JSON.stringify(out)} stderr: ${JSON.stringify(err)}`));
        }, ms);
        waiters.push(w);
        poke();
      });
    },
    kill(sig = 'SIGKILL') { try { child.kill(sig); } catch { /* gone */ } },
  };
}

/** Reads what a child's pipe still holds, without blocking; '' when the stream has ended. */
function drainPipe(stream) {
  const fd = stream?._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return '';
  const chunks = [];
  const buf = Buffer.alloc(65536);
  for (;;) {
    let n;
    try { n = readSync(fd, buf, 0, buf.length, null); } catch { break; } // EAGAIN: empty
    if (n <= 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks).toString('utf8');
}

// Runtime invocations in flight, and state roots whose test has finished. A test that timed
// out keeps running its body while its teardown cleans up: the teardown waits for the
// invocations on its roots, then closes the roots so that no new container can appear there.
const inflight = new Set();
const closedRoots = new Set();
const rootOf = args => { const i = args.indexOf('--root'); return i >= 0 ? args[i + 1] : undefined; };

/** Teardown side: wait (bounded) for invocations on `root`, and refuse new ones. */
export async function closeRoot(root, ms = 5_000) {
  closedRoots.add(root);
  const pending = [...inflight].filter(p => p.root === root).map(p => p.done);
  await Promise.race([Promise.all(pending), new Promise(r => setTimeout(r, ms))]);
}

function track(args, handle) {
  const entry = { root: rootOf(args), done: handle.done };
  inflight.add(entry);
  handle.done.finally(() => inflight.delete(entry));
  return handle;
}

function refused(args) {
  const res = { code: 125, signal: null, stdout: '', stderr: `test helper: --root ${rootOf(args)} is closed (the test already finished)\n`, timedOut: false };
  return { child: null, pid: undefined, stdout: () => '', stderr: () => res.stderr, done: Promise.resolve(res), waitFor: () => Promise.reject(new Error(res.stderr)), kill() {} };
}

/** Runs the runtime to completion: run(['--root', R, 'state', id]) → { code, signal, stdout, stderr, timedOut } */
export function run(args, opts = {}) {
  return spawn(args, opts).done;
}

/** Long-running variant (e.g. `run` in the foreground, `events`): see spawnCmd. */
export function spawn(args, opts = {}) {
  if (closedRoots.has(rootOf(args)) && !opts.afterClose) return refused(args);
  return track(args, spawnCmd(TSRUN, args, opts));
}

/** Runs any command to completion (same result shape as run). */
export function exec(cmd, args, opts = {}) {
  return spawnCmd(cmd, args, opts).done;
}

/** The runtime bound to one --root: rt(root)(['state', id]) and rt(root).spawn([...]). */
export function rt(root) {
  const f = (args, opts) => run(['--root', root, ...args], opts);
  f.spawn = (args, opts) => spawn(['--root', root, ...args], opts);
  f.root = root;
  return f;
}

export function describe(r) {
  return `exit ${r.code}${r.signal ? ` (signal ${r.signal})` : ''}${r.timedOut ? ' TIMED OUT' : ''}\n` +
    `--- stdout ---\n${r.stdout}--- stderr ---\n${r.stderr}`;
}
