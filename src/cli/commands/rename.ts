import fs = require('fs');
import path = require('path');
import { parse, type Globals } from '../args';
import { findContainer, saveContainer, takeName } from '../../engine/containers';
import { TsrunError } from '../../runtime/errors';
import { containerEvent } from '../../engine/events';

export default function (argv: string[], g: Globals): number {
  const p = parse(argv, {}, 'rename');
  if (p.args.length !== 2) throw new TsrunError('"tsrun rename" requires exactly 2 arguments: tsrun rename CONTAINER NEW_NAME');
  const c = findContainer(g.root, p.args[0]);
  const name = p.args[1].replace(/^\//, '');
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) throw new TsrunError(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  if (name === c.name) throw new TsrunError(`Renaming a container with the same name as its current name`);
  const names = path.join(g.root, 'names');
  try {
    takeName(g.root, name, c.id);
  } catch (e) {
    throw new TsrunError((e as Error).message); // docker's rename exits 1
  }
  saveContainer(g.root, { ...c, name });
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  (require('../../engine/network') as typeof import('../../engine/network')).renamed(g.root, c.id, c.name, name);
  containerEvent(g.root, { ...c, name }, 'rename', { oldName: '/' + c.name });
  try { fs.unlinkSync(path.join(names, c.name)); } catch { /* gone */ }
  return 0;
}
