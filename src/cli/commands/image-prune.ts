import { parse, type Globals } from '../args';
import { openStore, prune } from '../../image/ops';
import { humanSize } from '../format';

export default function (argv: string[], g: Globals): number {
  const p = parse(argv, { bool: ['all', 'force'], str: ['filter'], alias: { a: 'all', f: 'force' } }, 'image prune');
  const { deleted, bytes } = prune(g.root, openStore(g.root), !!p.flags.all);
  if (deleted.length) process.stdout.write(`Deleted Images:\n${deleted.join('\n')}\n\n`);
  process.stdout.write(`Total reclaimed space: ${humanSize(bytes)}\n`);
  return 0;
}
