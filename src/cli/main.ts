// tsrun's entry point.  Parses the global flags, then loads only the module of
// the command that runs: the start path of run/create/start/exec stays small.
import fs = require('fs');
import { TsrunError } from '../runtime/errors';
import type { Globals } from './args';
import { engineCommand } from './load-engine';

const VERSION = '0.1.0';
const COMMANDS: Record<string, () => { default: (argv: string[], g: Globals) => Promise<number> | number }> = {
  create: () => require('./commands/create'),
  run: () => require('./commands/run'),
  start: () => require('./commands/start'),
  state: () => require('./commands/state'),
  kill: () => require('./commands/kill'),
  delete: () => require('./commands/delete'),
  list: () => require('./commands/list'),
  ps: () => require('./commands/ps'),
  exec: () => require('./commands/exec'),
  pause: () => require('./commands/pause'),
  resume: () => require('./commands/resume'),
  events: () => require('./commands/events'),
  update: () => require('./commands/update'),
  features: () => require('./commands/features'),
  plan: () => require('./commands/plan'),
  spec: () => require('./commands/spec'),
  // the engine's commands live in dist/engine.js (see engine.ts)
  pull: () => ({ default: (a: string[], g: Globals) => engineCommand('pull', a, g) }),
  push: () => ({ default: (a: string[], g: Globals) => engineCommand('push', a, g) }),
  images: () => ({ default: (a: string[], g: Globals) => engineCommand('images', a, g) }),
  image: () => ({ default: (a: string[], g: Globals) => engineCommand('image', a, g) }),
  inspect: () => ({ default: (a: string[], g: Globals) => engineCommand('inspect', a, g) }),
  history: () => ({ default: (a: string[], g: Globals) => engineCommand('history', a, g) }),
  tag: () => ({ default: (a: string[], g: Globals) => engineCommand('tag', a, g) }),
  rmi: () => ({ default: (a: string[], g: Globals) => engineCommand('rmi', a, g) }),
  save: () => ({ default: (a: string[], g: Globals) => engineCommand('save', a, g) }),
  load: () => ({ default: (a: string[], g: Globals) => engineCommand('load', a, g) }),
  import: () => ({ default: (a: string[], g: Globals) => engineCommand('import', a, g) }),
  export: () => ({ default: (a: string[], g: Globals) => engineCommand('export', a, g) }),
  commit: () => ({ default: (a: string[], g: Globals) => engineCommand('commit', a, g) }),
  login: () => ({ default: (a: string[], g: Globals) => engineCommand('login', a, g) }),
  logout: () => ({ default: (a: string[], g: Globals) => engineCommand('logout', a, g) }),
  rm: () => ({ default: (a: string[], g: Globals) => engineCommand('rm', a, g) }),
  logs: () => ({ default: (a: string[], g: Globals) => engineCommand('logs', a, g) }),
  stop: () => ({ default: (a: string[], g: Globals) => engineCommand('stop', a, g) }),
  restart: () => ({ default: (a: string[], g: Globals) => engineCommand('restart', a, g) }),
  wait: () => ({ default: (a: string[], g: Globals) => engineCommand('wait', a, g) }),
  rename: () => ({ default: (a: string[], g: Globals) => engineCommand('rename', a, g) }),
  top: () => ({ default: (a: string[], g: Globals) => engineCommand('top', a, g) }),
  stats: () => ({ default: (a: string[], g: Globals) => engineCommand('stats', a, g) }),
  container: () => ({ default: containerCommand }),
  cp: () => ({ default: (a: string[], g: Globals) => engineCommand('cp', a, g) }),
  diff: () => ({ default: (a: string[], g: Globals) => engineCommand('diff', a, g) }),
  attach: () => ({ default: (a: string[], g: Globals) => engineCommand('attach', a, g) }),
  volume: () => ({ default: (a: string[], g: Globals) => engineCommand('volume', a, g) }),
  doctor: () => ({ default: (a: string[], g: Globals) => engineCommand('doctor', a, g) }),
  info: () => ({ default: (a: string[], g: Globals) => engineCommand('info', a, g) }),
  version: () => ({ default: (a: string[], g: Globals) => engineCommand('version', a, g) }),
  system: () => ({ default: (a: string[], g: Globals) => engineCommand('system', a, g) }),
  network: () => ({ default: (a: string[], g: Globals) => engineCommand('network', a, g) }),
  port: () => ({ default: (a: string[], g: Globals) => engineCommand('port', a, g) }),
  unpause: () => require('./commands/resume'),
};

// `tsrun container SUBCOMMAND`: docker's container commands under one name. They are always the
// docker forms (`container run IMAGE`, never a bundle), from either bundle.
const CONTAINER_ENGINE: Record<string, string> = {
  run: 'run-image', create: 'create-image', start: 'docker-start', kill: 'docker-kill', ls: 'containers-ps', list: 'containers-ps',
  ps: 'containers-ps', rm: 'rm', remove: 'rm', logs: 'logs', stop: 'stop', restart: 'restart', inspect: 'inspect', wait: 'wait',
  rename: 'rename', top: 'top', stats: 'stats', export: 'export', commit: 'commit', attach: 'attach', port: 'port', cp: 'cp', diff: 'diff',
};
const CONTAINER_MAIN: Record<string, string> = { exec: 'exec', pause: 'pause', unpause: 'resume', update: 'update' };

function containerCommand(argv: string[], g: Globals): Promise<number> | number {
  const [sub, ...rest] = argv;
  if (sub === '--help' || sub === 'help') {
    process.stdout.write(`\nUsage:  tsrun container COMMAND\n\nManage containers\n\nCommands:\n  ${[...Object.keys(CONTAINER_ENGINE), ...Object.keys(CONTAINER_MAIN), 'prune'].sort().join(', ')}\n`);
    return 0;
  }
  if (sub === 'prune') return engineCommand('container', argv, g);
  if (sub === 'healthcheck') return engineCommand('healthcheck', rest, g); // the supervisor's probe (hidden)
  if (sub === 'release') return engineCommand('container-release', rest, g); // the supervisor, once its container stopped for good (hidden)
  if (sub === 'exited') return engineCommand('container-exited', rest, g); // the supervisor, after each exit of its container (hidden)
  if (sub !== undefined && Object.hasOwn(CONTAINER_ENGINE, sub)) return engineCommand(CONTAINER_ENGINE[sub], rest, g);
  if (sub !== undefined && Object.hasOwn(CONTAINER_MAIN, sub)) return COMMANDS[CONTAINER_MAIN[sub]]().default(rest, g);
  const all = [...Object.keys(CONTAINER_ENGINE), ...Object.keys(CONTAINER_MAIN), 'prune'].sort().join(', ');
  throw new TsrunError(`container: unknown subcommand "${sub ?? ''}" (${all})`);
}

const USAGE = `Usage: tsrun [global options] COMMAND [options] [arguments]

A Linux container runtime with runc's command-line contract.

Commands:
  create    create a container from an OCI bundle (its process waits for start)
  start     start a created container
  run       create and start a container (--dry-run prints the plan)
  state     print a container's state as JSON
  kill      send a signal to a container's init (--all: to every process)
  delete    delete a container (--force kills a running one first)
  list      list containers (--format table|json, -q)
  ps        list a container's processes
  exec      run a new process in a running container
  pause     freeze every process of a container
  resume    thaw a paused container
  events    ID: a container's oom events and resource usage (--stats, runc's); without ID: docker's
            events (--since --until --filter --format; follows without --until)
  update    change a running container's resources
  features  print what this runtime supports (JSON)
  plan      print every kernel step a bundle's container will get
  spec      write a default config.json
  doctor    check the host: one line per check, what would fix it (--format json)
  info      the engine and host in brief, like docker info (--format json)
  version   the Client and Server versions, like docker version (--format json)

Images:
  run IMAGE [CMD...]   run a container from an image (pulled when missing): --rm, --name, -e, -w, -u, -i, -t, -d,
                       --entrypoint, --init; -it on a terminal: ctrl-p ctrl-q detaches (--detach-keys);
                       all flags: tsrun run --help
  pull, push           copy images from and to registries (OCI distribution API)
  images               list images (image ls)
  image inspect|history|tag|rm|prune|save|load|import
  rmi, tag, history, save, load, import, export, commit, login, logout

Containers (docker's commands; a name or id prefix works wherever an id does):
  run -d IMAGE         detached under a small C supervisor (logs, exit status, --restart, --rm)
  ps [-a -q -n -l -s --format --filter], logs [-f --tail -t --since --until], stop [-t], restart, start [-a -i], kill [-s],
  create IMAGE, wait, rm [-f], exec [-it -e -w -u -d], pause, unpause, inspect, rename, top,
  attach [--detach-keys --no-stdin --sig-proxy] (ctrl-p ctrl-q detaches),
  stats [-a --no-stream --format], events, diff, update, cp, port, container prune (and "container SUBCOMMAND" for all of these)
  system df|prune|info|events, volume ..., network ...; every command: COMMAND --help

Global options:
  --root DIR             state directory (default /var/lib/tsrun, or $TSRUN_ROOT)
  --log FILE             also log errors to FILE
  --log-format text|json log format (default text)
  --debug                show stack traces
  --version, -v          print the version
`;

function logError(g: Globals | undefined, msg: string) {
  if (!g?.log) return;
  const time = new Date().toISOString();
  const line = g.logFormat === 'json' ? JSON.stringify({ level: 'error', msg, time }) + '\n' : `time="${time}" level=error msg=${JSON.stringify(msg)}\n`;
  try { fs.appendFileSync(g.log, line); } catch { /* the log is best effort */ }
}

async function main(argv: string[]): Promise<number> {
  const g: Globals = { root: process.env.TSRUN_ROOT || '/var/lib/tsrun', logFormat: 'text', debug: false };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('-')) break;
    const [name, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const val = () => {
      if (inline !== undefined) return inline;
      if (i + 1 >= argv.length) throw new TsrunError(`flag needs an argument: ${a}`);
      return argv[++i];
    };
    switch (name) {
      case '--root': g.root = val(); break;
      case '--log': g.log = val(); break;
      case '--log-format': {
        const f = val();
        if (f !== 'text' && f !== 'json') throw new TsrunError(`invalid log format "${f}": use text or json`);
        g.logFormat = f;
        break;
      }
      case '--debug': g.debug = true; break;
      case '--systemd-cgroup': throw new TsrunError('--systemd-cgroup is not supported yet; use cgroupfs paths');
      case '--rootless': val(); break;
      case '--criu': val(); break;
      case '-v': case '--version':
        process.stdout.write(`tsrun version ${VERSION}\ncommit: unknown\nspec: 1.2.0\nnode: ${process.version}\n`);
        return 0;
      case '-h': case '--help':
        process.stdout.write(USAGE);
        return 0;
      default: throw new TsrunError(`flag provided but not defined: ${a}`);
    }
  }
  const cmd = argv[i];
  if (!cmd || cmd === 'help') { process.stdout.write(USAGE); return cmd ? 0 : 1; }
  const load = COMMANDS[cmd];
  if (!load) throw new TsrunError(`unknown command "${cmd}" (see tsrun --help)`);
  (main as { g?: Globals }).g = g;
  const rest = argv.slice(i + 1);
  // --help: each command's flag parser prints its usage and flags (help.ts)
  return load().default(rest, g);
}

function fail(e: unknown): number {
  const g = (main as { g?: Globals }).g;
  const err = e as Error & { exitCode?: number };
  // duck-typed: errors from dist/engine.js are instances of its own copy of TsrunError
  const ours = err instanceof TsrunError || (typeof err?.exitCode === 'number' && err?.name === 'Error');
  const msg = ours ? err.message : `${err?.message ?? String(e)}`;
  logError(g, msg);
  process.stderr.write(`tsrun: ${msg.split('\n')[0]}\n`);
  if (g?.debug || process.env.TSRUN_DEBUG) process.stderr.write(`${err?.stack ?? ''}\n`);
  return ours && typeof err.exitCode === 'number' ? err.exitCode : 1;
}

function exit(code: number) {
  // Writes to files, terminals and pipes are synchronous on Linux, but not to a socket (what a
  // Node parent's spawn() gives as stdout): what a slow reader has not taken yet is queued here,
  // and leaving now would lose it (a `logs` of 30000 lines kept 1516). Wait for it first.
  const pending = [process.stdout, process.stderr].filter((s) => s.writableLength > 0);
  if (pending.length) {
    let left = pending.length;
    for (const s of pending) s.write('', () => { if (--left === 0) exitNow(code); });
    return;
  }
  exitNow(code);
}

function exitNow(code: number) {
  // Leave through _exit in C when the shim is loaded (Node's teardown costs 2.5-7 ms); profilers
  // (any execArgv) need the normal exit.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const n = require('../kernel/native') as typeof import('../kernel/native');
  const save = (globalThis as { __tsrunSaveCodeCache?: () => void }).__tsrunSaveCodeCache;
  if (save) save();
  if (n.loaded() && !process.execArgv.length) n.native().exit(code);
  process.exit(code);
}

// A reader that went away (`tsrun ps | head -1`): end quietly, as docker does (SIGPIPE: 128+13).
const onStdioError = (e: NodeJS.ErrnoException) => { if (e.code === 'EPIPE') exit(141); else throw e; };
process.stdout.on('error', onStdioError);
process.stderr.on('error', onStdioError);
if (process.argv.includes('--debug')) process.env.TSRUN_DEBUG = '1';
if (process.env.TSRUN_TRACE) process.stderr.write(`[trace ${performance.now().toFixed(1)} ms] main\n`);
main(process.argv.slice(2)).then(exit, (e) => exit(fail(e)));
