import { parse, needId, type Globals } from '../args';
import { loadRecord } from '../../runtime/state';
import { currentStatus } from '../../runtime/container';
import { loadCgroupManager } from '../../runtime/cgroups';
import { TsrunError } from '../../runtime/errors';
import { resolveId } from '../../engine/containers';

export default function (argv: string[], g: Globals): number {
  const id = resolveId(g.root, needId(parse(argv, {}, 'resume'), 'resume'));
  const rec = loadRecord(g.root, id);
  if (currentStatus(g.root, rec) !== 'paused') throw new TsrunError(`container ${id} is not paused`);
  loadCgroupManager(rec.cgroup).thaw();
  return 0;
}
