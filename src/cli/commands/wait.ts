import { parse, type Globals } from '../args';
import { findContainer } from '../../engine/containers';
import { waitExit } from '../../engine/lifecycle';
import { TsrunError } from '../../runtime/errors';


export default async function (argv: string[], g: Globals): Promise<number> {
  const p = parse(argv, {}, 'wait');
  if (!p.args.length) throw new TsrunError('"tsrun wait" requires at least 1 argument');
  // docker waits for each in turn; an unknown name is reported and the others still waited for
  let code = 0;
  for (const key of p.args) {
    try {
      process.stdout.write(`${await waitExit(g.root, findContainer(g.root, key))}\n`);
    } catch (e) {
      process.stderr.write(`Error response from daemon: ${(e as Error).message}\n`);
      code = 1;
    }
  }
  return code;
}
