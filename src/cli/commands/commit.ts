import { parse, str, type Globals } from '../args';
import { commitContainer } from '../../engine/commit';
import { TsrunError } from '../../runtime/errors';

export default async function (argv: string[], g: Globals): Promise<number> {
  const p = parse(argv, { str: ['message', 'author'], multi: ['change'], bool: ['pause'], alias: { m: 'message', a: 'author', c: 'change', p: 'pause' } }, 'commit');
  if (p.args.length < 1 || p.args.length > 2) throw new TsrunError('"tsrun commit" requires at least 1 and at most 2 arguments: tsrun commit CONTAINER [REPOSITORY[:TAG]]');
  const rec = await commitContainer(g.root, p.args[0], p.args[1], { changes: p.flags.change as string[] | undefined, message: str(p, 'message'), author: str(p, 'author') });
  process.stdout.write(rec.id + '\n');
  return 0;
}
