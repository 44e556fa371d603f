import { parse, needId, type Globals } from '../args';
import { loadRecord } from '../../runtime/state';
import { currentStatus } from '../../runtime/container';
import { loadCgroupManager } from '../../runtime/cgroups';
import { TsrunError } from '../../runtime/errors';
import { resolveId } from '../../engine/containers';

export default function (argv: string[], g: Globals): number {
  const id = resolveId(g.root, needId(parse(argv, {}, 'pause'), 'pause'));
  const rec = loadRecord(g.root, id);
  const st = currentStatus(g.root, rec);
  if (st !== 'running' && st !== 'created') throw new TsrunError(`container ${id} is not running`);
  loadCgroupManager(rec.cgroup).freeze();
  return 0;
}
