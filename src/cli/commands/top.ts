import { parse, type Globals } from '../args';
import { resolveId } from '../../engine/containers';
import { TsrunError } from '../../runtime/errors';
import ps from './ps';

/** docker top NAME [ps options]: the container's processes, as runc's `ps ID` lists them. */
export default function (argv: string[], g: Globals): number {
  if (argv[0] === '--help') parse(argv, {}, 'top');
  if (!argv.length) throw new TsrunError('"tsrun top" requires at least 1 argument');
  return ps([resolveId(g.root, argv[0]), ...argv.slice(1)], g);
}
