import { parse, str, type Globals } from '../args';
import { findContainer } from '../../engine/containers';
import { stopContainer } from '../../engine/lifecycle';
import { parseSignal } from '../../runtime/signals';
import { TsrunError } from '../../runtime/errors';

export default async function (argv: string[], g: Globals, restart = false): Promise<number> {
  const p = parse(argv, { str: ['time', 'signal'], alias: { t: 'time', s: 'signal' } }, restart ? 'restart' : 'stop');
  if (!p.args.length) throw new TsrunError(`"tsrun ${restart ? 'restart' : 'stop'}" requires at least 1 argument`);
  const t = str(p, 'time');
  if (t !== undefined && !/^-?\d+$/.test(t)) throw new TsrunError(`invalid argument "${t}" for "-t, --time" flag`);
  let code = 0;
  for (const key of p.args) {
    try {
      const c = findContainer(g.root, key);
      const sig = str(p, 'signal') ?? c.stopSignal;
      await stopContainer(g.root, c, t === undefined ? c.stopTimeout ?? 10 : Math.max(0, Number(t)), sig ? parseSignal(sig) : 15);
      if (restart) {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { startDetached } = require('../../engine/lifecycle') as typeof import('../../engine/lifecycle');
        await startDetached(g.root, findContainer(g.root, c.id), { restart: c.restart, rm: c.autoRemove, tty: c.tty });
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        (require('../../engine/events') as typeof import('../../engine/events')).containerEvent(g.root, c, 'restart');
      }
      process.stdout.write(key + '\n');
    } catch (e) {
      process.stderr.write(`Error response from daemon: ${(e as Error).message}\n`);
      code = 1;
    }
  }
  return code;
}
