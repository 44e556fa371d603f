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
  // Lines come whole: a partial one waits in `rest` for its end (bytes, not text: a UTF-8 sequence
  // may be split between two reads).
  let rest: Buffer = Buffer.alloc(0);
  const lines = (b: Buffer): string[] => {
    rest = rest.length ? Buffer.concat([rest, b]) : b;
    const out: string[] = [];
    for (let nl = rest.indexOf(10); nl >= 0; nl = rest.indexOf(10)) { out.push(rest.subarray(0, nl).toString()); rest = rest.subarray(nl + 1); }
    return out;
  };
  // A log file is read through an fd, so a rotation (FILE becomes FILE.1) does not lose its end.
  interface Reading { fd: number; ino: number; pos: number }
  const open = (f: string): Reading | undefined => {
    try { const fd = fs.openSync(f, 'r'); return { fd, ino: fs.fstatSync(fd).ino, pos: 0 }; } catch { return undefined; }
  };
  const drain = (r: Reading): Buffer => {
    const size = fs.fstatSync(r.fd).size;
    if (size < r.pos) r.pos = 0; // truncated in place (max-file 1 starts the file over)
    const buf = Buffer.alloc(size - r.pos);
    const n = buf.length ? fs.readSync(r.fd, buf, 0, buf.length, r.pos) : 0;
    r.pos += n;
    return buf.subarray(0, n);
  };
  const inoOf = (f: string): number => { try { return fs.statSync(f).ino; } catch { return -1; } };
  const maxFile = c.log?.maxFile ?? 1;
  // The file written after r's, once r's was rotated to FILE.k: FILE.(k-1) (FILE for k = 1), opened
  // and then checked against a rotation meanwhile (r's would have moved on; renames go from the
  // oldest file down). undefined: mid-rotation, look again later.
  const successor = (r: Reading): Reading | undefined => {
    for (let k = 1; k < maxFile; k++) {
      if (inoOf(`${file}.${k}`) !== r.ino) continue;
      const next = open(k === 1 ? file : `${file}.${k - 1}`);
      if (next && inoOf(`${file}.${k}`) === r.ino) return next;
      if (next) fs.closeSync(next.fd);
      return undefined;
    }
    // rotated away altogether (more than max-file rotations since we looked): the live file
    return inoOf(file) !== r.ino ? open(file) : undefined;
  };

  // what is there now: the rotated files oldest first, then the live one (--tail counts over all)
  let live = open(file);
  const now: string[] = [];
  for (const f of files.slice(0, -1)) {
    const r = open(f);
    if (!r) continue;
    if (r.ino !== live?.ino) now.push(...lines(drain(r))); // (the live one rotated meanwhile: read below)
    fs.closeSync(r.fd);
  }
  if (live) now.push(...lines(drain(live)));
  const n = tail === undefined || tail === 'all' ? -1 : Number(tail);
  for (const l of n < 0 ? now : n === 0 ? [] : now.slice(-n)) emit(l);
  const more = () => {
    live ??= open(file);
    while (live) {
      for (const l of lines(drain(live))) emit(l);
      if (inoOf(file) === live.ino) return;
      const next = successor(live);
      if (!next) return;
      for (const l of lines(drain(live))) emit(l); // what was written to it before the rename
      fs.closeSync(live.fd);
      live = next;
    }
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
  if (live) fs.closeSync(live.fd);
  return 0;
}
