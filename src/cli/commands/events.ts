import { parse, str, needId, type Globals } from '../args';
import { loadRecord } from '../../runtime/state';
import { currentStatus } from '../../runtime/container';
import { loadCgroupManager } from '../../runtime/cgroups';
import { TsrunError } from '../../runtime/errors';
import { engineCommand } from '../load-engine';

function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s);
  if (!m) throw new TsrunError(`invalid interval "${s}": use e.g. 5s or 500ms`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 'm' ? n * 60000 : n * 1000;
}

export default async function (argv: string[], g: Globals): Promise<number> {
  // docker's events: no container argument, or docker's flags; `events ID` is the runtime's (stats, oom)
  if (!argv.some((a) => !a.startsWith('-')) || argv.some((a) => /^(--since|--until|--filter|-f|--format)(=|$)/.test(a))) {
    return engineCommand('docker-events', argv, g);
  }
  const p = parse(argv, { bool: ['stats'], str: ['interval'] }, 'events');
  const id = needId(p, 'events');
  const rec = loadRecord(g.root, id);
  const cg = loadCgroupManager(rec.cgroup);
  const emit = (type: string, data?: unknown) => process.stdout.write(JSON.stringify(data === undefined ? { type, id } : { type, id, data }) + '\n');
  if (p.flags.stats) {
    if (currentStatus(g.root, rec) === 'stopped') throw new TsrunError('container not running');
    emit('stats', cg.stats());
    return 0;
  }
  const interval = parseDuration(str(p, 'interval') ?? '5s');
  let ooms = 0;
  const oomPoll = () => {
    let n = 0;
    try { n = cg.oomKillCount(); } catch { /* no memory controller */ }
    for (; ooms < n; ooms++) emit('oom');
  };
  oomPoll();
  if (currentStatus(g.root, rec) === 'stopped') return 0;
  await new Promise<void>((resolve) => {
    let last = Date.now();
    const t = setInterval(() => {
      oomPoll();
      if (currentStatus(g.root, rec) === 'stopped') { clearInterval(t); resolve(); return; }
      if (Date.now() - last >= interval) { last = Date.now(); try { emit('stats', cg.stats()); } catch { /* removed */ } }
    }, Math.min(200, interval));
  });
  return 0;
}
