import { parse, str, type Globals } from '../args';
import { openStore, resolveImage, history } from '../../image/ops';
import { table, ago, humanSize, shortId } from '../format';
import { TsrunError } from '../../runtime/errors';

export default function (argv: string[], g: Globals): number {
  const p = parse(argv, { bool: ['no-trunc', 'quiet', 'human'], str: ['format'], alias: { q: 'quiet', H: 'human' } }, 'history');
  if (p.args.length !== 1) throw new TsrunError('"tsrun history" requires exactly 1 argument');
  const store = openStore(g.root);
  const rows = history(store, resolveImage(store, p.args[0]));
  const noTrunc = !!p.flags['no-trunc'];
  if (p.flags.quiet) {
    process.stdout.write(rows.map((r) => (r.id === '<missing>' ? r.id : noTrunc ? r.id : shortId(r.id)) + '\n').join(''));
    return 0;
  }
  if (str(p, 'format') === 'json') {
    for (const r of rows) process.stdout.write(JSON.stringify({ ID: r.id, CreatedAt: r.created, CreatedSince: ago(r.created), CreatedBy: r.createdBy, Size: humanSize(r.size), Comment: r.comment }) + '\n');
    return 0;
  }
  const trunc = (s: string) => (noTrunc || s.length <= 45 ? s : s.slice(0, 44) + '…');
  process.stdout.write(table([['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'],
    ...rows.map((r) => [r.id === '<missing>' || noTrunc ? r.id : shortId(r.id), ago(r.created), trunc(r.createdBy), humanSize(r.size), r.comment])]));
  return 0;
}
