// The engine's commands (images, docker-style containers, host checks), bundled apart from the
// runtime's hot path (dist/engine.js): `tsrun run -b`/create/start/exec load none of this.
import type { Globals } from './args';

export { renderHelp } from './help';
export { resolveUser } from '../engine/spec';

type Cmd = () => { default: (argv: string[], g: Globals) => Promise<number> | number };

export const COMMANDS: Record<string, Cmd> = {
  pull: () => require('./commands/pull'),
  push: () => require('./commands/push'),
  images: () => require('./commands/images'),
  image: () => require('./commands/image'),
  inspect: () => require('./commands/inspect'),
  history: () => require('./commands/history'),
  tag: () => require('./commands/tag'),
  rmi: () => require('./commands/rmi'),
  save: () => require('./commands/save'),
  load: () => require('./commands/load'),
  import: () => require('./commands/import'),
  export: () => require('./commands/export'),
  commit: () => require('./commands/commit'),
  login: () => require('./commands/login'),
  logout: () => require('./commands/logout'),
  rm: () => require('./commands/rm'),
  logs: () => require('./commands/logs'),
  stop: () => require('./commands/stop'),
  restart: () => require('./commands/restart'),
  wait: () => require('./commands/wait'),
  rename: () => require('./commands/rename'),
  top: () => require('./commands/top'),
  stats: () => require('./commands/stats'),
  container: () => require('./commands/container'),
  cp: () => require('./commands/cp'),
  diff: () => require('./commands/diff'),
  'container-release': () => ({
    default: (a: string[], g: Globals) => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      (require('../engine/lifecycle') as typeof import('../engine/lifecycle')).releaseStopped(g.root, a[0], process.ppid);
      return 0;
    },
  }),
  'container-exited': () => ({
    // the supervisor, after its container's init exited: the OOM verdict, the runtime state deleted,
    // and (--release, it stopped for good) the network and the mount released; one Node start
    default: (a: string[], g: Globals) => {
      /* eslint-disable @typescript-eslint/no-require-imports */
      const rt = require('../runtime/container') as typeof import('../runtime/container');
      /* eslint-enable @typescript-eslint/no-require-imports */
      const id = a[0];
      let oom = false;
      try { oom = (rt.state(g.root, id) as { oomKilled?: boolean }).oomKilled === true; } catch { /* no runtime state (a failed restart) */ }
      process.stdout.write(`${JSON.stringify({ oomKilled: oom })}\n`);
      let code = 0;
      try { rt.del(g.root, id, true); } catch (e) { process.stderr.write(`delete --force ${id}: ${(e as Error).message}\n`); code = 1; }
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      if (a.includes('--release')) (require('../engine/lifecycle') as typeof import('../engine/lifecycle')).releaseStopped(g.root, id, process.ppid);
      return code;
    },
  }),
  healthcheck: () => ({
    default: async (a: string[], g: Globals) => {
      /* eslint-disable @typescript-eslint/no-require-imports */
      const { probe } = require('../engine/health') as typeof import('../engine/health');
      const { tsrunBin } = require('../engine/lifecycle') as typeof import('../engine/lifecycle');
      /* eslint-enable @typescript-eslint/no-require-imports */
      await probe(g.root, a[0], tsrunBin());
      return 0;
    },
  }),
  attach: () => require('./commands/attach'),
  'docker-events': () => require('./commands/docker-events'),
  volume: () => require('./commands/volume'),
  doctor: () => require('./commands/doctor'),
  info: () => require('./commands/info'),
  version: () => require('./commands/version'),
  system: () => require('./commands/system'),
  network: () => require('./commands/network'),
  port: () => require('./commands/port'),
  // the docker halves of commands runc also has
  'run-image': () => require('./commands/run-image'),
  'create-image': () => require('./commands/create-image'),
  'containers-ps': () => require('./commands/containers-ps'),
  'docker-start': () => require('./commands/docker-start'),
  'docker-kill': () => require('./commands/docker-kill'),
  'docker-update': () => require('./commands/docker-update'),
};
