import { parse, needId, type Globals } from '../args';
import { state } from '../../runtime/container';

export default function (argv: string[], g: Globals): number {
  const p = parse(argv, {}, 'state');
  process.stdout.write(JSON.stringify(state(g.root, needId(p, 'state')), null, 2) + '\n');
  return 0;
}
