import { execFileSync } from 'child_process';
import { parse, str, needId, type Globals } from '../args';
import { loadRecord } from '../../runtime/state';
import { currentStatus } from '../../runtime/container';
import { loadCgroupManager } from '../../runtime/cgroups';
import { TsrunError } from '../../runtime/errors';
import { resolveId } from '../../engine/containers';
import { engineCommand } from '../load-engine';

export default function (argv: string[], g: Globals): number {
  // `ps` without a container id is docker's (list containers); `ps ID` is runc's (its processes)
  const positional = argv.filter((a, i) => !a.startsWith('-') && !/^(--format|-f|--filter|-n|--last)$/.test(argv[i - 1] ?? ''));
  if (!positional.length) {
    return engineCommand('containers-ps', argv, g) as number;
  }
  const p = parse(argv, { str: ['format'], alias: { f: 'format' }, stopAfter: 1 }, 'ps');
  const id = resolveId(g.root, needId(p, 'ps'));
  const rec = loadRecord(g.root, id);
  if (currentStatus(g.root, rec) === 'stopped') throw new TsrunError('container not running');
  const pids = loadCgroupManager(rec.cgroup).pids();
  const format = str(p, 'format') ?? 'table';
  if (format === 'json') {
    process.stdout.write(JSON.stringify(pids) + '\n');
    return 0;
  }
  if (format !== 'table') throw new TsrunError(`invalid format option "${format}": use table or json`);
  const psArgs = p.args.slice(1).length ? p.args.slice(1) : ['-ef'];
  const out = execFileSync('ps', psArgs, { encoding: 'utf8' }).split('\n');
  const header = out[0];
  const col = header.trim().split(/\s+/).indexOf('PID');
  if (col < 0) throw new TsrunError('ps: could not find the PID column in the ps output');
  const set = new Set(pids.map(String));
  process.stdout.write([header, ...out.slice(1).filter((l) => set.has(l.trim().split(/\s+/)[col]))].join('\n') + '\n');
  return 0;
}
