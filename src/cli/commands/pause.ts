import { parse, needId, type Globals } from '../args';
import { loadRecord } from '../../runtime/state';
import { currentStatus } from '../../runtime/container';
import { loadCgroupManager } from '../../runtime/cgroups';
import { TsrunError } from '../../runtime/errors';
import { resolveId, findContainer } from '../../engine/containers';
import { containerEvent } from '../../engine/events';

export default function (argv: string[], g: Globals): number {
  const id = resolveId(g.root, needId(parse(argv, {}, 'pause'), 'pause'));
  const rec = loadRecord(g.root, id);
  const st = currentStatus(g.root, rec);
  if (st !== 'running' && st !== 'created') throw new TsrunError(`container ${id} is not running`);
  loadCgroupManager(rec.cgroup).freeze();
  try { containerEvent(g.root, findContainer(g.root, id), 'pause'); } catch { /* a runtime container */ }
  return 0;
}
