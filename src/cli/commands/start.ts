import { parse, type Globals } from '../args';
import { start, currentStatus } from '../../runtime/container';
import { loadRecord } from '../../runtime/state';
import { TsrunError } from '../../runtime/errors';
import { isEngineContainer } from '../../engine/containers';
import { engineCommand } from '../load-engine';

export default async function (argv: string[], g: Globals): Promise<number> {
  const p = parse(argv, { bool: ['attach', 'interactive'], alias: { a: 'attach', i: 'interactive' } }, 'start');
  const key = p.args[0];
  // a container the runtime holds in "created" is runc's start (the supervisor's own call)
  let created = false;
  try { created = !!key && currentStatus(g.root, loadRecord(g.root, key)) === 'created'; } catch { /* not in the runtime */ }
  if (key && !created && isEngineContainer(g.root, key)) return engineCommand('docker-start', argv, g);
  if (!key) throw new TsrunError('start: requires exactly 1 argument (the container id)');
  start(g.root, key);
  return 0;
}
