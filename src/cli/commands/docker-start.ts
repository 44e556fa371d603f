import { parse, str, type Globals } from '../args';
import { findContainer } from '../../engine/containers';
import { startDetached, readExit, containerState } from '../../engine/lifecycle';
import { streamAttach, parseDetachKeys, DEFAULT_DETACH_KEYS, AttachConnection, connectAttach, proxySignals } from '../../engine/attach';
import { TsrunError } from '../../runtime/errors';

/** docker start [-a] [-i] NAME...: the container's supervisor creates and starts it again. */
export default async function (argv: string[], g: Globals): Promise<number> {
  const p = parse(argv, { bool: ['attach', 'interactive'], str: ['detach-keys'], alias: { a: 'attach', i: 'interactive' } }, 'start');
  const attach = !!(p.flags.attach || p.flags.interactive);
  if (attach && p.args.length > 1) throw new TsrunError('you cannot start and attach multiple containers at once');
  let code = 0;
  for (const k of p.args) {
    try {
      const c = findContainer(g.root, k);
      const st = containerState(g.root, c).status;
      const up = st === 'running' || st === 'paused' || st === 'restarting';
      if (!attach) {
        // docker: starting a running container does nothing
        if (!up) await startDetached(g.root, c, { restart: c.restart, rm: c.autoRemove, tty: c.tty });
        process.stdout.write(k + '\n');
        continue;
      }
      const stdin = !!p.flags.interactive && !!c.openStdin;
      if (stdin && c.tty && !process.stdin.isTTY) throw new TsrunError('the input device is not a TTY');
      const keys = parseDetachKeys(str(p, 'detach-keys') ?? DEFAULT_DETACH_KEYS);
      let conn: AttachConnection | undefined;
      // attached before the container starts: none of its output is missed (a running one: attach)
      if (up) conn = await connectAttach(g.root, c.id);
      else await startDetached(g.root, c, { restart: c.restart, rm: c.autoRemove, tty: c.tty, attach: (s) => { conn = new AttachConnection(s); } });
      const undo = c.tty ? () => undefined : proxySignals(g.root, c.id);
      const r = await streamAttach(conn!, { tty: c.tty, stdin, closeStdin: true, detachKeys: stdin ? keys : null });
      undo();
      if (r === 'detached') process.stderr.write('read escape sequence\n');
      else code = r ?? readExit(g.root, c.id)?.exitCode ?? 0;
    } catch (e) {
      process.stderr.write(`Error response from daemon: ${(e as Error).message}\n`);
      code = 1;
    }
  }
  return code;
}
