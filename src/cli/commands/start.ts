import { parse, needId, type Globals } from '../args';
import { start } from '../../runtime/container';

export default function (argv: string[], g: Globals): number {
  const p = parse(argv, {}, 'start');
  start(g.root, needId(p, 'start'));
  return 0;
}
