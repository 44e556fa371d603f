import { parse, type Globals } from '../args';
import { findContainer } from '../../engine/containers';
import { removeContainer } from '../../engine/run';
import { loadRecord } from '../../runtime/state';
import { currentStatus } from '../../runtime/container';
import { TsrunError } from '../../runtime/errors';

export default function (argv: string[], g: Globals): number {
  const p = parse(argv, { bool: ['force', 'volumes'], alias: { f: 'force', v: 'volumes' } }, 'rm');
  if (!p.args.length) throw new TsrunError('"tsrun rm" requires at least 1 argument');
  let code = 0;
  for (const key of p.args) {
    try {
      const c = findContainer(g.root, key);
      let st = 'stopped';
      try { st = currentStatus(g.root, loadRecord(g.root, c.id)); } catch { /* not in the runtime: stopped */ }
      if ((st === 'running' || st === 'paused') && !p.flags.force) {
        throw new TsrunError(`cannot remove container "/${c.name}": container is running: stop the container before removing or force remove`);
      }
      removeContainer(g.root, c, { volumes: !!p.flags.volumes });
      process.stdout.write(key + '\n');
    } catch (e) {
      process.stderr.write(`Error response from daemon: ${(e as Error).message}\n`);
      code = 1;
    }
  }
  return code;
}
