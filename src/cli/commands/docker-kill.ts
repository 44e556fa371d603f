import fs = require('fs');
import path = require('path');
import { parse, str, type Globals } from '../args';
import { findContainer, containerPath } from '../../engine/containers';
import { kill } from '../../runtime/container';
import { parseSignal } from '../../runtime/signals';
import { TsrunError } from '../../runtime/errors';
import { containerEvent } from '../../engine/events';

/** docker kill [-s SIGNAL] NAME...: default SIGKILL; a killed container is not restarted. */
export default function (argv: string[], g: Globals): number {
  const p = parse(argv, { bool: ['all'], str: ['signal'], alias: { a: 'all', s: 'signal' } }, 'kill');
  let sig = 9;
  try { if (str(p, 'signal')) sig = parseSignal(str(p, 'signal')!); } catch (e) { throw new TsrunError((e as Error).message); }
  let code = 0;
  for (const key of p.args) {
    try {
      const c = findContainer(g.root, key);
      try { fs.writeFileSync(path.join(containerPath(g.root, c.id), 'stopped'), ''); } catch { /* removed */ }
      kill(g.root, c.id, sig, false);
      containerEvent(g.root, c, 'kill', { signal: String(sig) });
      process.stdout.write(key + '\n');
    } catch (e) {
      process.stderr.write(`Error response from daemon: ${(e as Error).message.replace('container not running', `Container ${key} is not running`)}\n`);
      code = 1;
    }
  }
  return code;
}
