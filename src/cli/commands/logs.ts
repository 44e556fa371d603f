import fs = require('fs');
import path = require('path');
import { parse, str, type Globals } from '../args';
import { findContainer, logFiles } from '../../engine/containers';
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
  if (c.log?.driver === 'none') throw new TsrunError('configured logging driver does not support reading', 1);
  const files = logFiles(g.root, c);
  const file = files[files.length - 1];
  const from = since(str(p, 'since'));
  const to = since(str(p, 'until'), 'until');
  const tail = str(p, 'tail');
  if (tail !== undefined && tail !== 'all' && !(Number.isInteger(Number(tail)) && Number(tail) >= 0)) throw new TsrunError(`invalid value for "tail": ${tail}`);
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
  const readFrom = (f: string, at: number): { data: string; end: number; ino: number } | undefined => {
    try {
      const fd = fs.openSync(f, 'r');
      try {
        const st = fs.fstatSync(fd);
        if (st.size < at) at = 0; // truncated (max-file 1 starts the file over)
        const buf = Buffer.alloc(Math.max(0, st.size - at));
        if (buf.length) fs.readSync(fd, buf, 0, buf.length, at);
        return { data: buf.toString(), end: Math.max(at, st.size), ino: st.ino };
      } finally { fs.closeSync(fd); }
    } catch { return undefined; }
  };
  // what is there now: the rotated files oldest first, then the live one (--tail counts over all)
  let text = '';
  let pos = 0, ino = -1;
  for (const f of files) {
    const r = readFrom(f, 0);
    if (!r) continue;
    text += r.data;
    if (f === file) { pos = r.end; ino = r.ino; }
  }
  const lines = text.split('\n');
  let rest = lines.pop() ?? '';
  const n = tail === undefined || tail === 'all' ? -1 : Number(tail);
  for (const l of n < 0 ? lines : n === 0 ? [] : lines.slice(-n)) emit(l);
  const more = () => {
    let cur = readFrom(file, pos);
    if (cur && ino !== -1 && cur.ino !== ino) {
      // rotated (maybe more than once since we looked): the file we were reading is now FILE.k;
      // its rest, then FILE.(k-1) ... FILE.1 whole, then the new FILE from its start
      let k = 1;
      for (; k < (c.log?.maxFile ?? 1); k++) { try { if (fs.statSync(`${file}.${k}`).ino === ino) break; } catch { /* not there */ } }
      if (k < (c.log?.maxFile ?? 1)) {
        rest += readFrom(`${file}.${k}`, pos)?.data ?? '';
        for (let j = k - 1; j >= 1; j--) rest += readFrom(`${file}.${j}`, 0)?.data ?? '';
      }
      pos = 0;
      cur = readFrom(file, 0);
    }
    if (!cur) return;
    if (ino === -1 || cur.ino !== ino) ino = cur.ino;
    pos = cur.end;
    const ls = (rest + cur.data).split('\n');
    rest = ls.pop() ?? '';
    for (const l of ls) emit(l);
  };
  if (p.flags.follow && !(to && to <= Date.now())) {
    for (;;) {
      if (to && Date.now() > to) break; // --until in the future: follow until then
      const st = containerState(g.root, c).status;
      more();
      if (st !== 'running' && st !== 'restarting' && st !== 'paused') { await sleep(50); more(); break; }
      await sleep(100);
    }
  }
  return 0;
}
