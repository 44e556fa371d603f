import { parse, type Globals } from '../args';
import { start, currentStatus } from '../../runtime/container';
import { loadRecord } from '../../runtime/state';
import { TsrunError } from '../../runtime/errors';
import { findContainer, isEngineContainer } from '../../engine/containers';
import { startDetached, waitExit } from '../../engine/lifecycle';

export default async function (argv: string[], g: Globals): Promise<number> {
  const p = parse(argv, { bool: ['attach', 'interactive'], alias: { a: 'attach', i: 'interactive' } }, 'start');
  const key = p.args[0];
  // a container the runtime holds in "created" is runc's start (the supervisor's own call)
  let created = false;
  try { created = !!key && currentStatus(g.root, loadRecord(g.root, key)) === 'created'; } catch { /* not in the runtime */ }
  if (key && !created && isEngineContainer(g.root, key)) {
    // docker's start: the container's supervisor creates and starts it again
    let code = 0;
    for (const k of p.args) {
      const c = findContainer(g.root, k);
      try {
        await startDetached(g.root, c, { restart: c.restart, rm: c.autoRemove, tty: c.tty });
        if (p.flags.attach) {
          // eslint-disable-next-line @typescript-eslint/no-require-imports
          await (require('./logs') as typeof import('./logs')).default(['-f', c.id], g);
          code = await waitExit(g.root, c);
        } else process.stdout.write(k + '\n');
      } catch (e) {
        process.stderr.write(`Error response from daemon: ${(e as Error).message}\n`);
        code = 1;
      }
    }
    return code;
  }
  if (!key) throw new TsrunError('start: requires exactly 1 argument (the container id)');
  start(g.root, key);
  return 0;
}
