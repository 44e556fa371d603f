import { parse, str, type Globals } from '../args';
import { findContainer } from '../../engine/containers';
import { containerState, readExit, supervisorPid } from '../../engine/lifecycle';
import { connectAttach, streamAttach, parseDetachKeys, DEFAULT_DETACH_KEYS, proxySignals } from '../../engine/attach';
import { TsrunError } from '../../runtime/errors';

/** docker attach [--detach-keys K] [--no-stdin] [--sig-proxy=false] CONTAINER */
export default async function (argv: string[], g: Globals): Promise<number> {
  const p = parse(argv, { bool: ['no-stdin', 'sig-proxy'], str: ['detach-keys'] }, 'attach');
  if (p.args.length !== 1) throw new TsrunError('"tsrun attach" requires exactly 1 argument: tsrun attach [OPTIONS] CONTAINER');
  const c = findContainer(g.root, p.args[0]);
  const st = containerState(g.root, c).status;
  if (st === 'paused') throw new TsrunError('You cannot attach to a paused container, unpause it first');
  if (st !== 'running' && st !== 'restarting') throw new TsrunError('You cannot attach to a stopped container, start it first');
  // a foreground `tsrun run` (no -d, no -it) holds its container's stdio itself: no supervisor to attach to
  if (!supervisorPid(g.root, c.id)) throw new TsrunError(`container ${c.name} runs in the foreground of a \`tsrun run\` (its stdio is that command's): attach works for containers started with -d, -it or start; \`tsrun logs -f ${c.name}\` follows its output`);
  const keys = parseDetachKeys(str(p, 'detach-keys') ?? DEFAULT_DETACH_KEYS);
  const stdin = !!c.openStdin && !p.flags['no-stdin'];
  if (stdin && c.tty && !process.stdin.isTTY) throw new TsrunError('the input device is not a TTY');
  const sock = await connectAttach(g.root, c.id);
  const undo = p.flags['sig-proxy'] !== false && !c.tty ? proxySignals(g.root, c.id) : () => undefined;
  const r = await streamAttach(sock, { tty: c.tty, stdin, detachKeys: stdin ? keys : null });
  undo();
  if (r === 'detached') {
    process.stderr.write('read escape sequence\n');
    return 0;
  }
  return r ?? readExit(g.root, c.id)?.exitCode ?? 0;
}
