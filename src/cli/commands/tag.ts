import { parse, type Globals } from '../args';
import { openStore, tag } from '../../image/ops';
import { TsrunError } from '../../runtime/errors';

export default function (argv: string[], g: Globals): number {
  const p = parse(argv, {}, 'tag');
  if (p.args.length !== 2) throw new TsrunError('"tsrun tag" requires exactly 2 arguments: tsrun tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]');
  tag(openStore(g.root), p.args[0], p.args[1]);
  return 0;
}
