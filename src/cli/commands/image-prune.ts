import { parse, type Globals } from '../args';
import { openStore, prune } from '../../image/ops';
import type { ImageConfig } from '../../image/types';
import { humanSize } from '../format';
import { confirmOrCancel, pruneFilter } from '../prune';

/** Dangling images (all unused ones with `all`) that the filters allow; what was untagged and deleted, and the bytes freed. */
export function pruneImages(root: string, all: boolean, filters: string[]): { deleted: string[]; bytes: number } {
  const keep = pruneFilter('image prune', filters);
  const store = openStore(root);
  return prune(root, store, all, (rec) => {
    let labels: Record<string, string> | undefined;
    try { labels = store.content.readJSON<ImageConfig>(rec.id).config?.Labels; } catch { /* no config */ }
    return keep({ created: rec.created, labels });
  });
}

export default function (argv: string[], g: Globals): number {
  const p = parse(argv, { bool: ['all', 'force'], multi: ['filter'], alias: { a: 'all', f: 'force' } }, 'image prune');
  const filters = (p.flags.filter as string[] | undefined) ?? [];
  pruneFilter('image prune', filters); // bad filters fail before the prompt
  confirmOrCancel('image prune', !!p.flags.force, p.flags.all ? 'WARNING! This will remove all images without at least one container associated to them.' : 'WARNING! This will remove all dangling images.');
  const { deleted, bytes } = pruneImages(g.root, !!p.flags.all, filters);
  if (deleted.length) process.stdout.write(`Deleted Images:\n${deleted.join('\n')}\n\n`);
  process.stdout.write(`Total reclaimed space: ${humanSize(bytes)}\n`);
  return 0;
}
