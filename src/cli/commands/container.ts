import { parse, type Globals } from '../args';
import { TsrunError } from '../../runtime/errors';
import { listContainers } from '../../engine/containers';
import { containerState } from '../../engine/lifecycle';
import { removeContainer } from '../../engine/run';

// `tsrun container prune` (the other `container` subcommands are dispatched in main.ts).
export default function (argv: string[], g: Globals): number {
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
  throw new TsrunError(`container: unknown subcommand "${sub ?? ''}"`);
}
