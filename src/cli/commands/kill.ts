import { parse, needId, type Globals } from '../args';
import { kill } from '../../runtime/container';
import { parseSignal } from '../../runtime/signals';
import { TsrunError } from '../../runtime/errors';

export default function (argv: string[], g: Globals): number {
  const p = parse(argv, { bool: ['all'], alias: { a: 'all' } }, 'kill');
  const id = needId(p, 'kill');
  let sig = 15;
  if (p.args[1] !== undefined) {
    try { sig = parseSignal(p.args[1]); } catch (e) { throw new TsrunError((e as Error).message); }
  }
  kill(g.root, id, sig, !!p.flags.all);
  return 0;
}
