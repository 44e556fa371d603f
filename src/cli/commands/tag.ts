import { parse, type Globals } from '../args';
import { openStore, tag, familiar, resolveImage } from '../../image/ops';
import { parseRef, formatRef } from '../../image/ref';
import { logEvent } from '../../engine/events';
import { TsrunError } from '../../runtime/errors';

export default function (argv: string[], g: Globals): number {
  const p = parse(argv, {}, 'tag');
  if (p.args.length !== 2) throw new TsrunError('"tsrun tag" requires exactly 2 arguments: tsrun tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]');
  const store = openStore(g.root);
  tag(store, p.args[0], p.args[1]);
  logEvent(g.root, 'image', 'tag', resolveImage(store, p.args[0]).id, { name: familiar(formatRef(parseRef(p.args[1]))) });
  return 0;
}
