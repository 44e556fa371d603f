import { parse, needId, type Globals } from '../args';
import { loadRecord } from '../../runtime/state';
import { currentStatus } from '../../runtime/container';
import { loadCgroupManager } from '../../runtime/cgroups';
import { TsrunError } from '../../runtime/errors';
import { resolveId, findContainer } from '../../engine/containers';
import { containerEvent } from '../../engine/events';

export default function (argv: string[], g: Globals): number {
  const id = resolveId(g.root, needId(parse(argv, {}, 'resume'), 'resume'));
  const rec = loadRecord(g.root, id);
  if (currentStatus(g.root, rec) !== 'paused') throw new TsrunError(`container ${id} is not paused`);
  loadCgroupManager(rec.cgroup).thaw();
  try { containerEvent(g.root, findContainer(g.root, id), 'unpause'); } catch { /* a runtime container */ }
  return 0;
}
