import { parse, str, type Globals } from '../args';
import { openStore, familiar } from '../../image/ops';
import { table, ago, humanSize, shortId } from '../format';
import { parseRef } from '../../image/ref';
import { renderRows } from '../template';

export default function (argv: string[], g: Globals): number {
  const p = parse(argv, { bool: ['quiet', 'all', 'no-trunc', 'digests'], str: ['format', 'filter'], alias: { q: 'quiet', a: 'all' } }, 'images');
  const store = openStore(g.root);
  const rows: { repo: string; tag: string; digest: string; id: string; created: string; size: number }[] = [];
  for (const rec of store.list().sort((a, b) => (b.created > a.created ? 1 : -1))) {
    const tags = rec.repoTags.length ? rec.repoTags : [''];
    for (const t of tags) {
      let repo = '<none>', tag = '<none>';
      if (t) {
        const f = familiar(t);
        const r = parseRef(t);
        tag = r.tag ?? '<none>';
        repo = f.slice(0, f.length - tag.length - 1);
      }
      const digest = rec.repoDigests[0]?.split('@')[1] ?? '<none>';
      if (p.args[0] && repo !== p.args[0] && `${repo}:${tag}` !== p.args[0]) continue;
      rows.push({ repo, tag, digest, id: rec.id, created: rec.created, size: rec.size });
    }
  }
  const format = str(p, 'format');
  if (p.flags.quiet) {
    process.stdout.write([...new Set(rows.map((r) => (p.flags['no-trunc'] ? r.id : shortId(r.id))))].map((x) => x + '\n').join(''));
  } else if (format) {
    const objs = rows.map((r) => ({ Containers: 'N/A', CreatedAt: r.created, CreatedSince: ago(r.created), Digest: r.digest, ID: p.flags['no-trunc'] ? r.id : shortId(r.id),
      Repository: r.repo, SharedSize: 'N/A', Size: humanSize(r.size), Tag: r.tag, UniqueSize: 'N/A', VirtualSize: humanSize(r.size) }));
    process.stdout.write(renderRows(objs, format, { ID: 'IMAGE ID', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT' }));
  } else {
    const head = ['REPOSITORY', 'TAG', ...(p.flags.digests ? ['DIGEST'] : []), 'IMAGE ID', 'CREATED', 'SIZE'];
    process.stdout.write(table([head, ...rows.map((r) => [r.repo, r.tag, ...(p.flags.digests ? [r.digest] : []), p.flags['no-trunc'] ? r.id : shortId(r.id), ago(r.created), humanSize(r.size)])]));
  }
  return 0;
}
