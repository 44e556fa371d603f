import { parse, type Globals } from '../args';
import { TsrunError } from '../../runtime/errors';
import { containerChanges } from '../../engine/diff';

/** docker diff CONTAINER: "C /etc", "A /etc/new", "D /tmp/gone". */
export default function (argv: string[], g: Globals): number {
  const p = parse(argv, {}, 'diff');
  if (p.args.length !== 1) throw new TsrunError('"tsrun diff" requires exactly 1 argument: tsrun diff CONTAINER', 1);
  const kind = ['C', 'A', 'D'];
  process.stdout.write(containerChanges(g.root, p.args[0]).map((c) => `${kind[c.Kind]} ${c.Path}\n`).join(''));
  return 0;
}
