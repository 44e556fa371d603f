import fs = require('fs');
import path = require('path');
import { parse, str, type Globals } from '../args';
import { TsrunError } from '../../runtime/errors';
import { defaultSpec } from '../../runtime/defaults';

export default function (argv: string[], _g: Globals): number {
  const p = parse(argv, { str: ['bundle'], bool: ['rootless'], alias: { b: 'bundle' } }, 'spec');
  const file = path.join(str(p, 'bundle') ?? '.', 'config.json');
  if (fs.existsSync(file)) throw new TsrunError(`File ${file} exists. Remove it first`);
  fs.writeFileSync(file, JSON.stringify(defaultSpec(), null, '\t') + '\n');
  return 0;
}
