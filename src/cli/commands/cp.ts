import { parse, type Globals } from '../args';
import { cp } from '../../engine/cp';
import { TsrunError } from '../../runtime/errors';

export default async function (argv: string[], g: Globals): Promise<number> {
  const p = parse(argv, { bool: ['archive', 'follow-link', 'quiet'], alias: { a: 'archive', L: 'follow-link', q: 'quiet' } }, 'cp');
  if (p.args.length !== 2) throw new TsrunError('"tsrun cp" requires exactly 2 arguments: tsrun cp CONTAINER:SRC_PATH DEST_PATH|-  or  tsrun cp SRC_PATH|- CONTAINER:DEST_PATH');
  await cp(g.root, p.args[0], p.args[1]);
  return 0;
}
