import { parse, type Globals } from '../args';
import { openStore, removeImage } from '../../image/ops';
import { TsrunError } from '../../runtime/errors';

export default function (argv: string[], g: Globals): number {
  const p = parse(argv, { bool: ['force', 'no-prune'], alias: { f: 'force' } }, 'rmi');
  if (!p.args.length) throw new TsrunError('"tsrun rmi" requires at least 1 argument');
  const store = openStore(g.root);
  let code = 0;
  for (const key of p.args) {
    try {
      process.stdout.write(removeImage(g.root, store, key, !!p.flags.force).join('\n') + '\n');
    } catch (e) {
      if (p.args.length === 1) throw e;
      process.stderr.write(`Error response from daemon: ${(e as Error).message}\n`);
      code = 1;
    }
  }
  return code;
}
