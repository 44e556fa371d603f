import fs = require('fs');
import path = require('path');
import { parse, str, type Globals } from '../args';
import { findContainer, containerPath } from '../../engine/containers';
import { containerState, sleep } from '../../engine/lifecycle';
import { TsrunError } from '../../runtime/errors';

/** --since/--until: a duration back from now (10m, 1h), unix seconds, or RFC 3339; ms since the epoch. */
function since(v: string | undefined, flag = 'since'): number {
  if (!v) return 0;
  const rel = /^(\d+)(s|m|h)$/.exec(v);
  if (rel) return Date.now() - Number(rel[1]) * ({ s: 1000, m: 60000, h: 3600000 } as Record<string, number>)[rel[2]];
  const t = /^\d+(\.\d+)?$/.test(v) ? Number(v) * 1000 : Date.parse(v);
  if (Number.isNaN(t)) throw new TsrunError(`invalid value for "${flag}": ${v}`);
  return t;
}

export default async function (argv: string[], g: Globals): Promise<number> {
  const p = parse(argv, { bool: ['follow', 'timestamps', 'details'], str: ['tail', 'since', 'until'], alias: { f: 'follow', t: 'timestamps', n: 'tail' } }, 'logs');
  if (p.args.length !== 1) throw new TsrunError('"tsrun logs" requires exactly 1 argument');
  const c = findContainer(g.root, p.args[0]);
  const file = path.join(containerPath(g.root, c.id), `${c.id}-json.log`);
  const from = since(str(p, 'since'));
  const to = since(str(p, 'until'), 'until');
  const tail = str(p, 'tail');
  const ts = !!p.flags.timestamps;
  const emit = (line: string) => {
    if (!line) return;
    let e: { log: string; stream: string; time: string };
    try { e = JSON.parse(line); } catch { return; }
    if (from && Date.parse(e.time) < from) return;
    if (to && Date.parse(e.time) > to) return;
    const text = (ts ? e.time + ' ' : '') + e.log;
    (e.stream === 'stderr' ? process.stderr : process.stdout).write(text);
  };
  let pos = 0;
  let rest = '';
  const readMore = (first: boolean) => {
    let buf: Buffer;
    try {
      const fd = fs.openSync(file, 'r');
      try {
        const size = fs.fstatSync(fd).size;
        if (size <= pos) return;
        buf = Buffer.alloc(size - pos);
        fs.readSync(fd, buf, 0, buf.length, pos);
        pos = size;
      } finally { fs.closeSync(fd); }
    } catch { return; }
    const lines = (rest + buf.toString()).split('\n');
    rest = lines.pop() ?? '';
    let sel = lines;
    if (first && tail !== undefined && tail !== 'all') {
      const n = Number(tail);
      if (!Number.isInteger(n) || n < 0) throw new TsrunError(`invalid value for "tail": ${tail}`);
      sel = n === 0 ? [] : lines.slice(-n);
    }
    for (const l of sel) emit(l);
  };
  readMore(true);
  if (p.flags.follow && !(to && to <= Date.now())) {
    for (;;) {
      if (to && Date.now() > to) break; // --until in the future: follow until then
      const st = containerState(g.root, c).status;
      readMore(false);
      if (st !== 'running' && st !== 'restarting' && st !== 'paused') { await sleep(50); readMore(false); break; }
      await sleep(100);
    }
  }
  return 0;
}
