import { parse, str, needId, fdCount, type Globals } from '../args';
import { create } from '../../runtime/container';

export const FLAGS = {
  bool: ['no-pivot', 'no-new-keyring'],
  str: ['bundle', 'pid-file', 'console-socket', 'preserve-fds', 'pidfd-socket'],
  alias: { b: 'bundle' },
};

export default function (argv: string[], g: Globals): number {
  const p = parse(argv, FLAGS, 'create');
  create({
    root: g.root, id: needId(p, 'create'), bundle: str(p, 'bundle') ?? '.', pidFile: str(p, 'pid-file'),
    consoleSocket: str(p, 'console-socket'), noPivot: !!p.flags['no-pivot'], noNewKeyring: !!p.flags['no-new-keyring'], preserveFds: fdCount(str(p, 'preserve-fds')),
  });
  return 0;
}
