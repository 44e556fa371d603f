import { parse, type Globals } from '../args';
import { findContainer } from '../../engine/containers';
import { waitExit } from '../../engine/lifecycle';
import { TsrunError } from '../../runtime/errors';

export default async function (argv: string[], g: Globals): Promise<number> {
  const p = parse(argv, {}, 'wait');
  if (!p.args.length) throw new TsrunError('"tsrun wait" requires at least 1 argument');
  for (const key of p.args) process.stdout.write(`${await waitExit(g.root, findContainer(g.root, key))}\n`);
  return 0;
}
