import { parse, str, type Globals } from '../args';
import { openStore } from '../../image/ops';
import { saveImages } from '../../image/archive';
import { TsrunError } from '../../runtime/errors';

export default async function (argv: string[], g: Globals): Promise<number> {
  const p = parse(argv, { str: ['output', 'platform'], alias: { o: 'output' } }, 'save');
  if (!p.args.length) throw new TsrunError('"tsrun save" requires at least 1 argument');
  await saveImages(g.root, openStore(g.root), p.args, str(p, 'output'));
  return 0;
}
