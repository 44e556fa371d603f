import { parse, type Globals } from '../args';
import { TsrunError } from '../../runtime/errors';
import { listContainers } from '../../engine/containers';
import { containerState } from '../../engine/lifecycle';
import { removeContainer } from '../../engine/run';

// `tsrun container SUBCOMMAND`: docker's container commands under one name.
const SUB: Record<string, string> = {
  ls: 'ps', list: 'ps', ps: 'ps', run: 'run', create: 'create', start: 'start', stop: 'stop', restart: 'restart', kill: 'kill',
  rm: 'rm', logs: 'logs', exec: 'exec', inspect: 'inspect', wait: 'wait', rename: 'rename', top: 'top', pause: 'pause',
  unpause: 'resume', attach: 'attach', export: 'export', commit: 'commit', stats: 'stats',
};

export default function (argv: string[], g: Globals): Promise<number> | number {
  const sub = argv[0];
  if (sub === 'prune') {
    parse(argv.slice(1), { bool: ['force'], alias: { f: 'force' }, multi: ['filter'] }, 'container prune');
    const deleted: string[] = [];
    for (const c of listContainers(g.root)) {
      if (containerState(g.root, c).status !== 'exited' && containerState(g.root, c).status !== 'created') continue;
      removeContainer(g.root, c);
      deleted.push(c.id);
    }
    process.stdout.write((deleted.length ? `Deleted Containers:\n${deleted.join('\n')}\n\n` : '') + 'Total reclaimed space: 0B\n');
    return 0;
  }
  if (!sub || !SUB[sub]) throw new TsrunError(`container: unknown subcommand "${sub ?? ''}"`);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(`./${SUB[sub]}`) as { default: (a: string[], g: Globals) => Promise<number> | number };
  return mod.default(argv.slice(1), g);
}
