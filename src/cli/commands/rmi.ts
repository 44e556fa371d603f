import { parse, type Globals } from '../args';
import { openStore, removeImage, resolveImage } from '../../image/ops';
import { logEvent } from '../../engine/events';
import { TsrunError } from '../../runtime/errors';

export default function (argv: string[], g: Globals): number {
  const p = parse(argv, { bool: ['force', 'no-prune'], alias: { f: 'force' } }, 'rmi');
  if (!p.args.length) throw new TsrunError('"tsrun rmi" requires at least 1 argument');
  const store = openStore(g.root);
  let code = 0;
  for (const key of p.args) {
    try {
      let id = '';
      try { id = resolveImage(store, key).id; } catch { /* removeImage reports it */ }
      const lines = removeImage(g.root, store, key, !!p.flags.force);
      process.stdout.write(lines.join('\n') + '\n');
      // docker's image events: untag NAME, delete ID
      for (const l of lines) {
        const m = /^(Untagged|Deleted): (.*)$/.exec(l);
        if (m) logEvent(g.root, 'image', m[1] === 'Untagged' ? 'untag' : 'delete', m[1] === 'Deleted' ? m[2] : id, m[1] === 'Untagged' ? { name: m[2] } : {});
      }
    } catch (e) {
      if (p.args.length === 1) throw e;
      process.stderr.write(`Error response from daemon: ${(e as Error).message}\n`);
      code = 1;
    }
  }
  return code;
}
