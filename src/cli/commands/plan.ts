import path = require('path');
import { parse, str, type Globals } from '../args';
import { printPlan } from '../../runtime/container';
import { TsrunError } from '../../runtime/errors';

export default function (argv: string[], g: Globals): number {
  const p = parse(argv, { str: ['format', 'bundle', 'console-socket'], bool: ['no-pivot'], alias: { b: 'bundle', f: 'format' } }, 'plan');
  const bundle = p.args[0] ?? str(p, 'bundle') ?? '.';
  const format = str(p, 'format') ?? 'text';
  if (format !== 'text' && format !== 'json') throw new TsrunError(`invalid format "${format}": use text or json`);
  process.stdout.write(printPlan({ root: g.root, id: path.basename(path.resolve(bundle)) || 'container', bundle,
    consoleSocket: str(p, 'console-socket'), noPivot: !!p.flags['no-pivot'] }, format));
  return 0;
}
