import fs = require('fs');
import { parse, str, needId, fdCount, type Globals } from '../args';
import { run, printPlan } from '../../runtime/container';
import { engineCommand } from '../load-engine';

/**
 * Two commands share the name, told apart as runc and docker users write them:
 *   tsrun run [--bundle DIR] ID       the OCI runtime's run (a bundle: -b given, or ./config.json)
 *   tsrun run [OPTIONS] IMAGE [CMD]   the engine's run (an image)
 */
export default async function (argv: string[], g: Globals): Promise<number> {
  const oci = argv.some((a) => a === '-b' || a === '--bundle' || a.startsWith('--bundle=') || a === '--dry-run')
    || (fs.existsSync('config.json') && argv.filter((a) => !a.startsWith('-')).length === 1 && !argv.some((a) => /^-(t|i|it|ti|e|d)$|^--(rm|name|entrypoint)/.test(a)));
  if (!oci) {
    return engineCommand('run-image', argv, g);
  }
  const p = parse(argv, {
    bool: ['no-pivot', 'no-new-keyring', 'detach', 'keep', 'no-subreaper', 'dry-run'],
    str: ['bundle', 'pid-file', 'console-socket', 'preserve-fds', 'pidfd-socket', 'format'],
    alias: { b: 'bundle', d: 'detach' },
  }, 'run');
  const id = p.flags['dry-run'] && !p.args.length ? 'dry-run' : needId(p, 'run');
  const o = {
    root: g.root, id, bundle: str(p, 'bundle') ?? '.', pidFile: str(p, 'pid-file'),
    consoleSocket: str(p, 'console-socket'), noPivot: !!p.flags['no-pivot'], noNewKeyring: !!p.flags['no-new-keyring'], preserveFds: fdCount(str(p, 'preserve-fds')), detach: !!p.flags.detach, keep: !!p.flags.keep,
  };
  if (p.flags['dry-run']) {
    process.stdout.write(printPlan(o, str(p, 'format') ?? 'text'));
    return 0;
  }
  return run(o);
}
