import { type Globals } from '../args';
import stop from './stop';

export default function (argv: string[], g: Globals): Promise<number> {
  return stop(argv, g, true);
}
