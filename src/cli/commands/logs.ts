import fs = require('fs');
import path = require('path');
import { parse, str, type Globals } from '../args';
import { findContainer, logPath } from '../../engine/containers';
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
  const file = logPath(g.root, c.id);
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
  // What r's file has beyond what was read, to sink line by line, in pieces of at most 4 MiB (a
  // log of gigabytes is never in memory at once).
  const chunk = Buffer.alloc(4 << 20);
  // a slow reader: writes to a full pipe queue in memory, so wait for it to take what is queued
  const backpressure = async () => {
    for (const s of [process.stdout, process.stderr]) if (s.writableLength > chunk.length) await new Promise((res) => s.once('drain', res));
  };
  const drain = async (r: Reading, sink: (line: string) => void): Promise<void> => {
    const size = fs.fstatSync(r.fd).size;
    if (size < r.pos) r.pos = 0; // truncated in place (max-file 1 starts the file over)
    while (r.pos < size) {
      const n = fs.readSync(r.fd, chunk, 0, Math.min(chunk.length, size - r.pos), r.pos);
      if (n <= 0) break;
      r.pos += n;
      for (const l of lines(Buffer.from(chunk.subarray(0, n)))) sink(l);
      await backpressure();
    }
  };
  const inoOf = (f: string): number => { try { return fs.statSync(f).ino; } catch { return -1; } };
  const maxFile = c.log?.maxFile ?? 1;
  // The oldest file there is (FILE when nothing was rotated yet): the highest FILE.k in the
  // directory, opened and then checked against a rotation meanwhile (it would have moved up and
  // left an older one above the index we opened).
  const base = path.basename(file) + '.';
  const oldest = (): Reading | undefined => {
    for (let tries = 0; tries < 100; tries++) {
      let max = 0;
      try {
        for (const f of fs.readdirSync(path.dirname(file))) {
          if (!f.startsWith(base)) continue;
          const k = Number(f.slice(base.length));
          if (Number.isInteger(k) && k > max && k < maxFile) max = k;
        }
      } catch { return undefined; }
      const r = open(max ? `${file}.${max}` : file);
      if (!r) continue;
      const above = max + 1 < maxFile ? inoOf(`${file}.${max + 1}`) : -1;
      if (above === -1 || above === r.ino) return r;
      fs.closeSync(r.fd);
    }
    return open(file);
  };
  // The file written after r's, once r's was rotated to FILE.k: FILE.(k-1) (FILE for k = 1), opened
  // and then checked against a rotation meanwhile (r's would have moved on: files only move up, the
  // oldest first). Not found at all: it was rotated out (past max-file), so its successor is the
  // oldest one left. undefined: mid-rotation, look again.
  const successor = (r: Reading): Reading | undefined => {
    for (let k = 1; k < maxFile; k++) {
      if (inoOf(`${file}.${k}`) !== r.ino) continue;
      const next = open(k === 1 ? file : `${file}.${k - 1}`);
      if (next && inoOf(`${file}.${k}`) === r.ino) return next;
      if (next) fs.closeSync(next.fd);
      return undefined;
    }
    const next = oldest();
    if (next && next.ino === r.ino) { fs.closeSync(next.fd); return undefined; }
    return next;
  };
  // Read on from `live` along the chain of files up to the live one, each line to sink. `settle`:
  // wait out a rotation in progress (the first read, which must reach the live file).
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  let live: Reading | undefined;
  const advance = async (sink: (line: string) => void, settle: boolean) => {
    live ??= open(file);
    for (let tries = 0; live;) {
      await drain(live, sink);
      if (inoOf(file) === live.ino) return;
      const next = successor(live);
      if (!next) {
        if (!settle || ++tries > 500) return;
        Atomics.wait(sleeper, 0, 0, 2);
        continue;
      }
      await drain(live, sink); // what was written to it before the rename
      fs.closeSync(live.fd);
      live = next;
    }
  };

  // what is there now: from the oldest file along the chain to the live one (--tail counts over all)
  // (with --tail N only the last N lines are kept on the way; without it each line goes out at once)
  live = oldest();
  const n = tail === undefined || tail === 'all' ? -1 : Number(tail);
  let now: string[] = [];
  await advance(n < 0 ? emit : (l) => { now.push(l); if (now.length > 2 * n + 1000) now = now.slice(-n); }, true);
  for (const l of n === 0 ? [] : now.slice(-n)) emit(l);
  const more = () => advance(emit, false);
  if (p.flags.follow && !(to && to <= Date.now())) {
    for (;;) {
      if (to && Date.now() > to) break; // --until in the future: follow until then
      const st = containerState(g.root, c).status;
      await more();
      if (st !== 'running' && st !== 'restarting' && st !== 'paused') { await sleep(50); await more(); break; }
      await sleep(100);
    }
  }
  if (live) fs.closeSync(live.fd);
  return 0;
}
