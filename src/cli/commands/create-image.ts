import { type Globals } from '../args';
import { parseRunArgs } from './run-image';
import { createImageContainer } from '../../engine/run';

/** docker create IMAGE [CMD...]: the container, its snapshot and bundle; nothing runs yet. */
export default async function (argv: string[], g: Globals): Promise<number> {
  const c = await createImageContainer({ ...parseRunArgs(argv, g, 'create'), detach: true });
  process.stdout.write(c.id + '\n');
  return 0;
}
