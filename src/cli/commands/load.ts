import { parse, str, type Globals } from '../args';
import { openStore } from '../../image/ops';
import { loadImages } from '../../image/archive';

export default async function (argv: string[], g: Globals): Promise<number> {
  const p = parse(argv, { str: ['input', 'platform'], bool: ['quiet'], alias: { i: 'input', q: 'quiet' } }, 'load');
  const lines = await loadImages(g.root, openStore(g.root), str(p, 'input'));
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
