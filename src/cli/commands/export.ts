import { parse, str, type Globals } from '../args';
import { exportContainer } from '../../engine/commit';
import { TsrunError } from '../../runtime/errors';

export default async function (argv: string[], g: Globals): Promise<number> {
  const p = parse(argv, { str: ['output'], alias: { o: 'output' } }, 'export');
  if (p.args.length !== 1) throw new TsrunError('"tsrun export" requires exactly 1 argument');
  await exportContainer(g.root, p.args[0], str(p, 'output'));
  return 0;
}
