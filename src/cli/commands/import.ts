import { parse, str, type Globals } from '../args';
import { openStore, importTarball } from '../../image/ops';
import { TsrunError } from '../../runtime/errors';

export default async function (argv: string[], g: Globals): Promise<number> {
  const p = parse(argv, { str: ['message', 'platform'], multi: ['change'], alias: { m: 'message', c: 'change' } }, 'import');
  if (!p.args.length) throw new TsrunError('"tsrun import" requires at least 1 argument: tsrun import FILE|- [REPOSITORY[:TAG]]');
  const file = p.args[0] === '-' ? '/dev/stdin' : p.args[0];
  const rec = await importTarball(openStore(g.root), file, p.args[1], (p.flags.change as string[]) ?? [], str(p, 'message'));
  process.stdout.write(rec.id + '\n');
  return 0;
}
