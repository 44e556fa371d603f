import fs = require('fs');
import { parse, str, needId, fdCount, type Globals } from '../args';
import { create } from '../../runtime/container';
import { engineCommand } from '../load-engine';

export const FLAGS = {
  bool: ['no-pivot', 'no-new-keyring'],
  str: ['bundle', 'pid-file', 'console-socket', 'preserve-fds', 'pidfd-socket'],
  alias: { b: 'bundle' },
};

export default async function (argv: string[], g: Globals): Promise<number> {
  // runc's create takes a bundle (-b, or ./config.json); docker's an image
  const oci = argv.some((a) => a === '-b' || a === '--bundle' || a.startsWith('--bundle=')) || (fs.existsSync('config.json') && argv.filter((a) => !a.startsWith('-')).length === 1);
  if (!oci) return engineCommand('create-image', argv, g);
  const p = parse(argv, FLAGS, 'create');
  create({
    root: g.root, id: needId(p, 'create'), bundle: str(p, 'bundle') ?? '.', pidFile: str(p, 'pid-file'),
    consoleSocket: str(p, 'console-socket'), noPivot: !!p.flags['no-pivot'], noNewKeyring: !!p.flags['no-new-keyring'], preserveFds: fdCount(str(p, 'preserve-fds')),
  });
  return 0;
}
