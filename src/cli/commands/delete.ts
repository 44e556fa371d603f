import { parse, type Globals } from '../args';
import { del } from '../../runtime/container';
import { TsrunError } from '../../runtime/errors';

export default function (argv: string[], g: Globals): number {
  const p = parse(argv, { bool: ['force'], alias: { f: 'force' } }, 'delete');
  if (!p.args.length) throw new TsrunError('delete: requires at least 1 argument (the container id)');
  let code = 0;
  for (const id of p.args) {
    try {
      del(g.root, id, !!p.flags.force);
    } catch (e) {
      if (p.args.length === 1) throw e;
      process.stderr.write(`tsrun: ${(e as Error).message}\n`);
      code = 1;
    }
  }
  return code;
}
