import { parse, type Globals } from '../args';
import { openStore, resolveImage, normalise, familiar } from '../../image/ops';
import { parseRef } from '../../image/ref';
import { pushImage } from '../../image/push';
import { progressRenderer } from '../../image/registry/progress';
import { TsrunError } from '../../runtime/errors';

export default async function (argv: string[], g: Globals): Promise<number> {
  const p = parse(argv, { bool: ['quiet', 'all-tags'], alias: { q: 'quiet', a: 'all-tags' } }, 'push');
  if (p.args.length !== 1) throw new TsrunError('"tsrun push" requires exactly 1 argument: tsrun push NAME[:TAG]');
  const store = openStore(g.root);
  const rec = resolveImage(store, p.args[0]);
  const target = parseRef(normalise(p.args[0]));
  if (!p.flags.quiet) process.stdout.write(`The push refers to repository [${familiar(normalise(p.args[0])).replace(/:[^:/]*$/, '')}]\n`);
  const { digest } = await pushImage(store, rec.id, target, { progress: p.flags.quiet ? undefined : progressRenderer(process.stdout) });
  process.stdout.write(`${target.tag ?? 'latest'}: digest: ${digest}\n`);
  return 0;
}
