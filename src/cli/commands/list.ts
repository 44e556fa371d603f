import { parse, str, type Globals } from '../args';
import { listIds, loadRecord, toState } from '../../runtime/state';
import { currentStatus } from '../../runtime/container';
import { TsrunError } from '../../runtime/errors';

export default function (argv: string[], g: Globals): number {
  const p = parse(argv, { bool: ['quiet'], str: ['format'], alias: { q: 'quiet', f: 'format' } }, 'list');
  const format = str(p, 'format') ?? 'table';
  if (format !== 'table' && format !== 'json') throw new TsrunError(`invalid format option "${format}": use table or json`);
  const states = [];
  for (const id of listIds(g.root)) {
    try {
      const rec = loadRecord(g.root, id);
      states.push(toState(rec, currentStatus(g.root, rec)));
    } catch { /* removed meanwhile */ }
  }
  if (p.flags.quiet) {
    process.stdout.write(states.map((s) => s.id + '\n').join(''));
  } else if (format === 'json') {
    process.stdout.write(JSON.stringify(states) + '\n');
  } else {
    const rows = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER'], ...states.map((s) => [s.id, String(s.pid), s.status, s.bundle, s.created, s.owner])];
    const w = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
    process.stdout.write(rows.map((r) => r.map((x, c) => (c === r.length - 1 ? x : x.padEnd(w[c] + 3))).join('')).join('\n') + '\n');
  }
  return 0;
}
