import { parse, needId, type Globals } from '../args';
import { isEngineContainer } from '../../engine/containers';
import { engineCommand } from '../load-engine';
import { kill } from '../../runtime/container';
import { parseSignal } from '../../runtime/signals';
import { TsrunError } from '../../runtime/errors';

export default function (argv: string[], g: Globals): Promise<number> | number {
  const p = parse(argv, { bool: ['all'], str: ['signal'], alias: { a: 'all', s: 'signal' } }, 'kill');
  const id = needId(p, 'kill');
  // docker's form: kill [-s SIGNAL] NAME... (default SIGKILL; a killed container is not restarted)
  if (p.flags.signal !== undefined || (isEngineContainer(g.root, id) && (p.args.length === 1 || isEngineContainer(g.root, p.args[1])))) {
    return engineCommand('docker-kill', argv, g);
  }
  let sig = 15;
  if (p.args[1] !== undefined) {
    try { sig = parseSignal(p.args[1]); } catch (e) { throw new TsrunError((e as Error).message); }
  }
  kill(g.root, id, sig, !!p.flags.all);
  return 0;
}
