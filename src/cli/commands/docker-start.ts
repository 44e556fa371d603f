import { parse, type Globals } from '../args';
import { findContainer } from '../../engine/containers';
import { startDetached, waitExit } from '../../engine/lifecycle';

/** docker start [-a] NAME...: the container's supervisor creates and starts it again. */
export default async function (argv: string[], g: Globals): Promise<number> {
  const p = parse(argv, { bool: ['attach', 'interactive'], alias: { a: 'attach', i: 'interactive' } }, 'start');
  let code = 0;
  for (const k of p.args) {
    try {
      const c = findContainer(g.root, k);
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
