// native/build/tsrun-supervisor (the supervisor of detached containers) driven by a FAKE tsrun:
// a shell script whose `create` starts a real process that waits, as the runtime's init does, until
// it can write its byte into ROOT/oci/ID/exec.fifo (the supervisor reads it: its own `start`), writes
// its pid to --pid-file and exits, so the container's "init" really is reparented to the supervisor (a
// child subreaper). Each run goes through a small python harness that is itself a subreaper:
// it plays the CLI (fd 3 = a pipe, stdio on /dev/null) and reports the exit status of the CLI's
// child and of the detached supervisor. No root, no kernel features beyond prctl/signalfd/ptys.
import test from 'ava';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SUPERVISOR = join(REPO, 'native', 'build', 'tsrun-supervisor');
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const TIME_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/;
const sleep = ms => new Promise(r => setTimeout(r, ms));

const FAKE_TSRUN = String.raw`#!/bin/sh
# fake tsrun: --root ROOT CMD ARGS...; logs "CMD ARGS" to $FAKE_CALLS
[ "$1" = --root ] || { echo "fake tsrun: no --root" >&2; exit 2; }
root=$2; shift 2; cmd=$1; shift
echo "$cmd $*" >> "$FAKE_CALLS"
case $cmd in
create)
  while [ $# -gt 1 ]; do case $1 in --bundle) b=$2; shift 2;; --pid-file) pf=$2; shift 2;; --console-socket) cs=$2; shift 2;; *) shift;; esac; done
  if [ -n "$FAKE_CREATE_FAIL" ]; then echo "fake create:" >&2; echo "$FAKE_CREATE_FAIL" >&2; exit 1; fi
  fifo="$root/oci/$1/exec.fifo"
  mkdir -p "$root/oci/$1" && rm -f "$fifo" && mkfifo "$fifo" || exit 1
  [ -n "$cs" ] && exec "$FAKE_PYTHON" "$FAKE_PTY" "$cs" "$pf" "$fifo" "$FAKE_CMD"
  if [ -n "$FAKE_INIT_DIES" ]; then sh -c 'sleep 0.2; exit 1' & else
  sh -c 'printf 0 > "$1"; exec sh -c "$2"' fakeinit "$fifo" "$FAKE_CMD" &
  fi
  echo $! > "$pf.tmp" && mv "$pf.tmp" "$pf"
  echo "init $!" >> "$FAKE_CALLS" ;;
container) case $1 in exited) printf '{"oomKilled":%s}\n' "${'${FAKE_OOM:-false}'}" ;; release|healthcheck) ;; *) exit 1 ;; esac ;;
delete) ;;
rm) [ -e "$FAKE_DIR/supervisor.pid" ] && echo "rm saw supervisor.pid" >> "$FAKE_CALLS"; exit 0 ;;
*) echo "fake tsrun: unknown command $cmd" >&2; exit 1 ;;
esac
`;

// create with --console-socket: a pty whose master goes to the socket (SCM_RIGHTS), the slave is
// the "container"'s stdio.
const FAKE_PTY = String.raw`import os, socket, sys, time, fcntl, termios
sock_path, pidfile, go, cmd = sys.argv[1:5]
m, s = os.openpty()
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.connect(sock_path)
socket.send_fds(c, [b'x'], [m])
c.close(); os.close(m)
pid = os.fork()
if pid == 0:
    os.setsid()
    fcntl.ioctl(s, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2): os.dup2(s, fd)
    os.close(s)
    with open(go, 'w') as f: f.write('0')  # the exec.fifo: blocks until the supervisor starts it
    os.execvp('sh', ['sh', '-c', cmd])
os.close(s)
with open(pidfile + '.tmp', 'w') as f: f.write(str(pid))
os.rename(pidfile + '.tmp', pidfile)
with open(os.environ['FAKE_CALLS'], 'a') as f: f.write('init %d\n' % pid)
`;

// The CLI's part: a subreaper (so the detached supervisor's exit status is visible) that starts
// the supervisor with stdio on /dev/null and fd 3 a pipe; prints JSON lines: {"outcome"} at the
// pipe's EOF, then {"pid","comm","code","first"} for every process it reaps.
const HARNESS = String.raw`import ctypes, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(36, 1, 0, 0, 0) != 0: sys.exit('prctl PR_SET_CHILD_SUBREAPER failed')
r, w = os.pipe()
first = os.fork()
if first == 0:
    os.dup2(w, 3, inheritable=True)
    null = os.open('/dev/null', os.O_RDWR)
    for fd in (0, 1, 2): os.dup2(null, fd)
    os.execv(sys.argv[1], sys.argv[1:])
os.close(w)
out = b''
while True:
    b = os.read(r, 4096)
    if not b: break
    out += b
print(json.dumps({'outcome': out.decode()}), flush=True)
while True:
    try: info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)
    except ChildProcessError: break
    try: comm = open('/proc/%d/comm' % info.si_pid).read().strip()
    except OSError: comm = ''
    _, st = os.waitpid(info.si_pid, 0)
    print(json.dumps({'pid': info.si_pid, 'comm': comm, 'code': os.waitstatus_to_exitcode(st), 'first': info.si_pid == first}), flush=True)
`;

test.before(() => {
  execFileSync('make', ['-s', '-C', join(REPO, 'native'), 'build/tsrun-supervisor'], { stdio: 'inherit' });
});

function alive(pid) {
  try { return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return false; }
}

/** A temp dir with the fake tsrun and a container dir; cleaned up (and its processes killed) at the end. */
function setup(t, { cmd, env = {} } = {}) {
  const tmp = mkdtempSync(join(process.env.TSRUN_TEST_TMP || tmpdir(), 'tsrun-sup-'));
  const dir = join(tmp, 'containers', 'c1');
  execFileSync('mkdir', ['-p', dir, join(tmp, 'root')]);
  const fake = join(tmp, 'fake-tsrun');
  writeFileSync(fake, FAKE_TSRUN); chmodSync(fake, 0o755);
  writeFileSync(join(tmp, 'fakepty.py'), FAKE_PTY);
  writeFileSync(join(tmp, 'harness.py'), HARNESS);
  const s = {
    tmp, dir, root: join(tmp, 'root'), fake, id: 'c1', calls: join(tmp, 'calls'), pids: [],
    env: {
      ...process.env, FAKE_CALLS: join(tmp, 'calls'), FAKE_DIR: dir, FAKE_CMD: cmd ?? 'true',
      FAKE_PTY: join(tmp, 'fakepty.py'), FAKE_PYTHON: PYTHON, ...env,
    },
  };
  t.teardown(() => {
    // only processes this test started: the harness, the supervisor, the fake inits
    for (const pid of [...s.pids, ...initPids(s)]) if (alive(pid)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    rmSync(tmp, { recursive: true, force: true });
  });
  return s;
}

const callLines = s => (existsSync(s.calls) ? readFileSync(s.calls, 'utf8').split('\n').filter(Boolean) : []);
const initPids = s => callLines(s).filter(l => l.startsWith('init ')).map(l => Number(l.slice(5)));
const logLines = (s, file = join(s.dir, 'c1-json.log')) =>
  (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map(l => JSON.parse(l)) : []);
const exitJson = s => JSON.parse(readFileSync(join(s.dir, 'exit.json'), 'utf8'));

/** Runs the supervisor under the harness; returns { outcome: Promise<string>, done: Promise<{cli, supervisor, reaped}> }. */
function launch(t, s, extra = [], { timeout = 30_000 } = {}) {
  const args = ['--id', s.id, '--dir', s.dir, '--root', s.root, '--tsrun', s.fake, ...extra];
  const h = spawn(PYTHON, [join(s.tmp, 'harness.py'), SUPERVISOR, ...args], { env: s.env, stdio: ['ignore', 'pipe', 'pipe'] });
  s.pids.push(h.pid);
  let buf = '', err = '';
  const recs = [];
  let gotOutcome;
  const outcome = new Promise(r => { gotOutcome = r; });
  h.stderr.setEncoding('utf8').on('data', d => { err += d; });
  h.stdout.setEncoding('utf8').on('data', d => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const rec = JSON.parse(buf.slice(0, i)); buf = buf.slice(i + 1);
      if ('outcome' in rec) gotOutcome(rec.outcome); else recs.push(rec);
    }
  });
  const timer = setTimeout(() => { t.log(`harness timed out; calls:\n${callLines(s).join('\n')}`); h.kill('SIGKILL'); }, timeout);
  const done = new Promise(res => h.on('close', code => {
    clearTimeout(timer);
    if (err) t.log(`harness stderr: ${err}`);
    gotOutcome(null);
    res({
      code, reaped: recs, cli: recs.find(r => r.first),
      supervisor: recs.find(r => !r.first && r.comm.startsWith('tsrun-supervis')),
    });
  }));
  return { outcome, done };
}

test('run: ok <init pid> on fd 3, detached subreaper, json-file log, exit.json, delete --force', async t => {
  const s = setup(t, { cmd: 'echo out; echo err >&2; sleep 3; exit 3' });
  const run = launch(t, s);
  const outcome = await run.outcome;
  t.regex(outcome, /^ok \d+\n$/);
  const init = Number(outcome.slice(3));
  t.deepEqual(initPids(s), [init]);
  // while it runs: supervisor.pid, a session leader, the parent of init (reparented: subreaper)
  const sup = Number(readFileSync(join(s.dir, 'supervisor.pid'), 'utf8'));
  s.pids.push(sup);
  const stat = readFileSync(`/proc/${sup}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  t.is(Number(stat[3]), sup, 'setsid: session id is its pid');
  const istat = readFileSync(`/proc/${init}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  t.is(Number(istat[1]), sup, 'the init is the supervisor\'s child');
  t.is(readlinkSync(`/proc/${sup}/cwd`), '/');

  const r = await run.done;
  t.is(r.cli.code, 0, 'the CLI\'s child exits at once');
  t.truthy(r.supervisor, JSON.stringify(r.reaped));
  t.is(r.supervisor.pid, sup);
  t.is(r.supervisor.code, 0);
  t.false(existsSync(join(s.dir, 'supervisor.pid')));
  t.false(existsSync(join(s.dir, 'supervisor.log')), 'no errors logged');
  t.false(alive(init));

  const lines = logLines(s);
  t.deepEqual(lines.map(l => [l.stream, l.log]).sort(), [['stderr', 'err\n'], ['stdout', 'out\n']]);
  for (const l of lines) { t.regex(l.time, TIME_RE); t.deepEqual(Object.keys(l), ['log', 'stream', 'time']); }
  const ex = exitJson(s);
  t.is(ex.exitCode, 3);
  t.is(ex.oomKilled, false);
  t.is(ex.restartCount, 0);
  t.regex(ex.finishedAt, TIME_RE);
  t.deepEqual(callLines(s).filter(l => !l.startsWith('init ')), [
    `create --bundle ${s.dir} --pid-file ${s.dir}/init.pid c1`, 'container exited c1 --release',
  ]);
});

test('log lines: JSON escaping, invalid UTF-8, 16 KiB split, partial last line; --log FILE; signal exit code', async t => {
  const s = setup(t, {
    cmd: String.raw`printf 'a"b\\c\ttab\001 é\n'; printf '\377ok\n'; head -c 20000 /dev/zero | tr '\0' x; echo; printf 'no-newline'; kill -9 $$`,
  });
  const file = join(s.tmp, 'other.log');
  const run = launch(t, s, ['--log', file]);
  t.regex(await run.outcome, /^ok \d+\n$/);
  const r = await run.done;
  t.is(r.supervisor.code, 0);
  t.false(existsSync(join(s.dir, 'c1-json.log')));
  const logs = logLines(s, file).map(l => l.log);
  t.deepEqual(logs, ['a"b\\c\ttab\u0001 é\n', '\ufffdok\n', 'x'.repeat(16384), 'x'.repeat(20000 - 16384) + '\n', 'no-newline']);
  t.true(readFileSync(file, 'utf8').includes('\\u0001'));
  t.is(exitJson(s).exitCode, 137);
});

test('restart on-failure:2: two restarts, then stop; backoff between them', async t => {
  const s = setup(t, { cmd: 'echo run; exit 3' });
  const started = Date.now();
  const run = launch(t, s, ['--restart', 'on-failure:2']);
  t.regex(await run.outcome, /^ok \d+\n$/);
  const r = await run.done;
  t.is(r.supervisor.code, 0);
  t.true(Date.now() - started >= 300, '100 ms + 200 ms of backoff');
  const ex = exitJson(s);
  t.is(ex.exitCode, 3);
  t.is(ex.restartCount, 2);
  const calls = callLines(s);
  t.is(calls.filter(l => l.startsWith('create ')).length, 3);
  // each exit: one `container exited`; the last (no restart after it) releases
  t.deepEqual(calls.filter(l => l.startsWith('container ')), ['container exited c1', 'container exited c1', 'container exited c1 --release']);
  t.deepEqual(logLines(s).map(l => l.log), ['run\n', 'run\n', 'run\n']);
});

test('restart on-failure: exit 0 is not restarted; --node NODE runs NODE CMD ARGS', async t => {
  const s = setup(t, { cmd: 'exit 0' });
  chmodSync(s.fake, 0o644);  // not executable: only `sh fake-tsrun ...` works
  const run = launch(t, s, ['--restart', 'on-failure', '--node', '/bin/sh']);
  t.regex(await run.outcome, /^ok \d+\n$/);
  t.is((await run.done).supervisor.code, 0);
  t.deepEqual(exitJson(s), { ...exitJson(s), exitCode: 0, restartCount: 0 });
  t.is(callLines(s).filter(l => l.startsWith('create ')).length, 1);
});

test('restart always: restarts until DIR/stopped exists; with it, no restart', async t => {
  const s = setup(t, { cmd: 'echo run; sleep 0.1' });
  const run = launch(t, s, ['--restart', 'always']);
  await run.outcome;
  const deadline = Date.now() + 10_000;
  while (callLines(s).filter(l => l.startsWith('create ')).length < 3 && Date.now() < deadline) await sleep(20);
  writeFileSync(join(s.dir, 'stopped'), '');
  const r = await run.done;
  t.is(r.supervisor.code, 0);
  const creates = callLines(s).filter(l => l.startsWith('create ')).length;
  t.true(creates >= 3);
  const ex = exitJson(s);
  t.is(ex.exitCode, 0);
  t.is(ex.restartCount, creates - 1);

  const s2 = setup(t, { cmd: 'exit 0' });
  writeFileSync(join(s2.dir, 'stopped'), '');
  const run2 = launch(t, s2, ['--restart', 'unless-stopped']);
  await run2.outcome;
  await run2.done;
  t.is(callLines(s2).filter(l => l.startsWith('create ')).length, 1);
  t.is(exitJson(s2).restartCount, 0);
});

test('--rm: rm -f after delete, supervisor.pid already gone; oomKilled from state; start, oom and die events', async t => {
  const s = setup(t, { cmd: 'exit 1', env: { FAKE_OOM: 'true' } });
  const run = launch(t, s, ['--rm']);
  await run.outcome;
  t.is((await run.done).supervisor.code, 0);
  t.deepEqual(callLines(s).filter(l => !l.startsWith('init ')).slice(-2), ['container exited c1', 'rm -f c1']);
  t.is(exitJson(s).oomKilled, true);
  // docker's events: start, oom, then die with the exit code, in ROOT/events.jsonl
  const ev = readFileSync(join(s.root, 'events.jsonl'), 'utf8').trim().split('\n').map(l => JSON.parse(l));
  t.deepEqual(ev.map(e => [e.Type, e.Action, e.Actor.ID, e.Actor.Attributes]),
    [['container', 'start', 'c1', {}], ['container', 'oom', 'c1', {}], ['container', 'die', 'c1', { exitCode: '1' }]]);
  t.is(Math.floor(ev[2].timeNano / 1e9), ev[2].time);
});

test('a failing create: error <message> on fd 3, delete --force, exit 125', async t => {
  const s = setup(t, { env: { FAKE_CREATE_FAIL: 'no such thing' } });
  const run = launch(t, s, ['--restart', 'always']);
  t.is(await run.outcome, 'error fake create: no such thing\n');
  const r = await run.done;
  t.is(r.cli.code, 0);
  t.is(r.supervisor.code, 125);
  t.deepEqual(callLines(s).slice(1), ['delete --force c1']);
  t.false(existsSync(join(s.dir, 'supervisor.pid')));
  t.false(existsSync(join(s.dir, 'exit.json')));
  t.regex(readFileSync(join(s.dir, 'supervisor.log'), 'utf8'), /start container: fake create: no such thing/);
});

test('an init that dies before it is started: the supervisor stops waiting on exec.fifo and says so', async t => {
  const s = setup(t, { env: { FAKE_INIT_DIES: '1' } });
  const run = launch(t, s, ['--restart', 'always']);
  t.is(await run.outcome, 'error cannot start container c1: its init process exited before start\n');
  const r = await run.done;
  t.not(r.supervisor.code, 0);
  t.deepEqual(callLines(s).filter(l => !l.startsWith('init ')).map(l => l.split(' ')[0]), ['create', 'delete']);
});

test('bad arguments: error on fd 3, exit 125 before detaching', async t => {
  const s = setup(t);
  const run = launch(t, s, ['--restart', 'sometimes']);
  t.regex(await run.outcome, /^error tsrun-supervisor: bad --restart/);
  const r = await run.done;
  t.is(r.cli.code, 125);
  t.is(r.supervisor, undefined);
});

test('--tty: the pty master from --console-socket is logged as stdout; the sockets are removed', async t => {
  const s = setup(t, { cmd: 'echo out; echo err >&2; [ -t 1 ] && echo tty; exit 5' });
  const run = launch(t, s, ['--tty']);
  t.regex(await run.outcome, /^ok \d+\n$/);
  const r = await run.done;
  t.is(r.supervisor.code, 0);
  t.deepEqual(logLines(s).map(l => [l.stream, l.log]), [['stdout', 'out\r\n'], ['stdout', 'err\r\n'], ['stdout', 'tty\r\n']]);
  t.is(exitJson(s).exitCode, 5);
  // the socket is DIR/console.sock, passed as an O_PATH fd (DIR may be longer than sun_path)
  t.true(callLines(s)[0].includes('--console-socket /proc/self/fd/3'));
  t.false(existsSync(join(s.dir, 'console.sock')));
  t.false(existsSync(join(s.dir, 'attach.sock')));
});

// serial (ava runs these first, alone): other supervisors would share the binary's pages.
test.serial('SIGTERM is forwarded to init (exit 143, no restart); PSS of an idle supervisor', async t => {
  const s = setup(t, { cmd: 'exec sleep 30' });
  const run = launch(t, s, ['--restart', 'always']);
  const init = Number((await run.outcome).slice(3));
  const sup = Number(readFileSync(join(s.dir, 'supervisor.pid'), 'utf8'));
  s.pids.push(sup);
  await sleep(300);
  const rollup = readFileSync(`/proc/${sup}/smaps_rollup`, 'utf8');
  const kb = k => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(rollup)[1]);
  const musl = statSync(SUPERVISOR).size < 256 * 1024;  // static glibc: ~600 KiB of text, mapped
  t.log(`idle supervisor (${musl ? 'musl' : 'glibc'}): Pss ${kb('Pss')} kB (anon ${kb('Pss_Anon')}, file ${kb('Pss_File')}), Rss ${kb('Rss')} kB`);
  t.true(kb('Pss_Anon') <= 200, rollup);
  if (musl) t.true(kb('Pss') <= 200, rollup);
  t.true(alive(init));
  process.kill(sup, 'SIGTERM');
  const r = await run.done;
  t.is(r.supervisor.code, 0);
  const ex = exitJson(s);
  t.is(ex.exitCode, 143);
  t.is(ex.restartCount, 0);
  t.is(callLines(s).filter(l => l.startsWith('create ')).length, 1);
});
