import path = require('path');
import { parse, type Globals } from '../args';
import { TsrunError } from '../../runtime/errors';
import { listContainers, containerPath } from '../../engine/containers';
import { containerState } from '../../engine/lifecycle';
import { removeContainer } from '../../engine/run';
import { confirmOrCancel, pruneFilter, type Prunable } from '../prune';
import { humanSize } from '../format';
import { du } from './system';

/** The stopped (exited or created) containers that `keep` allows; their ids and writable layers' bytes. */
export function pruneContainers(root: string, keep: (o: Prunable) => boolean): { deleted: string[]; bytes: number } {
  const deleted: string[] = [];
  let bytes = 0;
  for (const c of listContainers(root)) {
    const st = containerState(root, c).status;
    if ((st !== 'exited' && st !== 'created') || !keep({ created: c.created, labels: c.labels })) continue;
    const size = du(path.join(containerPath(root, c.id), 'upper'));
    removeContainer(root, c);
    deleted.push(c.id);
    bytes += size;
  }
  return { deleted, bytes };
}

// `tsrun container prune` (the other `container` subcommands are dispatched in main.ts).
export default function (argv: string[], g: Globals): number {
  const sub = argv[0];
  if (sub !== 'prune') throw new TsrunError(`container: unknown subcommand "${sub ?? ''}"`);
  const p = parse(argv.slice(1), { bool: ['force'], alias: { f: 'force' }, multi: ['filter'] }, 'container prune');
  const keep = pruneFilter('container prune', (p.flags.filter as string[] | undefined) ?? []);
  confirmOrCancel('container prune', !!p.flags.force, 'WARNING! This will remove all stopped containers.');
  const { deleted, bytes } = pruneContainers(g.root, keep);
  process.stdout.write((deleted.length ? `Deleted Containers:\n${deleted.join('\n')}\n\n` : '') + `Total reclaimed space: ${humanSize(bytes)}\n`);
  return 0;
}
