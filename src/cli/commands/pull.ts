import { parse, str, type Globals } from '../args';
import { openStore, familiar } from '../../image/ops';
import { parseRef, formatRef } from '../../image/ref';
import { pullImage } from '../../image/pull';
import { progressRenderer } from '../../image/registry/progress';
import { TsrunError } from '../../runtime/errors';
import { logEvent } from '../../engine/events';

export default async function (argv: string[], g: Globals): Promise<number> {
  const p = parse(argv, { bool: ['quiet', 'all-tags'], str: ['platform'], alias: { q: 'quiet', a: 'all-tags' } }, 'pull');
  if (p.args.length !== 1) throw new TsrunError('"tsrun pull" requires exactly 1 argument: tsrun pull NAME[:TAG|@DIGEST]');
  let ref;
  try { ref = parseRef(p.args[0]); } catch (e) { throw new TsrunError((e as Error).message); }
  const name = formatRef(ref);
  if (!p.flags.quiet) process.stdout.write(`${ref.digest ? '' : `${ref.tag}: `}Pulling from ${ref.path}\n`);
  const rec = await pullImage(openStore(g.root), ref, { platform: str(p, 'platform'), progress: p.flags.quiet ? undefined : progressRenderer(process.stdout) });
  if (!p.flags.quiet) {
    const digest = rec.repoDigests.find((d) => d.startsWith(name.replace(/[:@].*$/, '') + '@'))?.split('@')[1] ?? rec.manifestDigest;
    process.stdout.write(`Digest: ${digest}\nStatus: Downloaded newer image for ${familiar(name)}\n`);
  }
  process.stdout.write(`${name}\n`);
  logEvent(g.root, 'image', 'pull', familiar(name), { name: familiar(name) });
  return 0;
}
