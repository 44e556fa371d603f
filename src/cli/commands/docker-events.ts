import fs = require('fs');
import { parse, str, type Globals } from '../args';
import { eventsFile, type EventLine } from '../../engine/events';
import { listContainers } from '../../engine/containers';
import { sleep } from '../../engine/lifecycle';
import { TsrunError } from '../../runtime/errors';
import { renderTemplate } from './inspect';

/** --since/--until: RFC 3339, unix seconds[.fraction], or a duration back from now (10m, 1h30m, 45s). Nanoseconds. */
export function parseTime(v: string, flag: string): bigint {
  const dur = /^(\d+(?:\.\d+)?(?:ns|us|\u00b5s|ms|s|m|h))+$/.test(v);
  if (dur) {
    let ms = 0;
    for (const m of v.matchAll(/(\d+(?:\.\d+)?)(ns|us|\u00b5s|ms|s|m|h)/g)) {
      ms += Number(m[1]) * ({ ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 } as Record<string, number>)[m[2]];
    }
    return BigInt(Math.round(Date.now() - ms)) * 1_000_000n;
  }
  const unix = /^(\d+)(?:\.(\d{1,9}))?$/.exec(v);
  if (unix) return BigInt(unix[1]) * 1_000_000_000n + BigInt((unix[2] ?? '').padEnd(9, '0') || '0');
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new TsrunError(`invalid value for "${flag}": ${v}: use RFC 3339, unix seconds or a duration like 10m`);
  const frac = /\.(\d+)/.exec(v.replace(/^[^T]*T/, ''));
  return BigInt(Math.floor(t / 1000)) * 1_000_000_000n + BigInt(frac ? frac[1].slice(0, 9).padEnd(9, '0') : String((t % 1000) * 1_000_000));
}

type Filters = Map<string, string[]>;

function parseFilters(list: string[]): Filters {
  const f: Filters = new Map();
  for (const x of list) {
    const i = x.indexOf('=');
    if (i <= 0) throw new TsrunError(`bad format of filter (expected name=value): ${x}`);
    const k = x.slice(0, i), v = x.slice(i + 1);
    if (!['type', 'event', 'container', 'image', 'label', 'scope', 'network', 'volume'].includes(k)) throw new TsrunError(`invalid filter '${k}'`);
    f.set(k, [...(f.get(k) ?? []), v]);
  }
  return f;
}

function matches(e: EventLine, f: Filters): boolean {
  const a = e.Actor.Attributes;
  const any = (k: string, ok: (v: string) => boolean) => !f.has(k) || f.get(k)!.some(ok);
  return any('type', (v) => v === e.Type)
    && any('event', (v) => v === e.Action || e.Action.startsWith(v + ':'))
    && any('container', (v) => e.Type === 'container' && (a.name === v || e.Actor.ID.startsWith(v)))
    && any('image', (v) => a.image === v || (e.Type === 'image' && (e.Actor.ID === v || a.name === v)) || a.image === v.replace(/^docker\.io\/(library\/)?/, ''))
    && any('network', (v) => e.Type === 'network' && (a.name === v || e.Actor.ID.startsWith(v)))
    && any('volume', (v) => e.Type === 'volume' && e.Actor.ID === v)
    && any('label', (v) => { const i = v.indexOf('='); return i < 0 ? v in a : a[v.slice(0, i)] === v.slice(i + 1); })
    && any('scope', (v) => v === 'local');
}

function isoNano(ns: bigint): string {
  const s = new Date(Number(ns / 1_000_000n)).toISOString().slice(0, 19);
  return `${s}.${String(ns % 1_000_000_000n).padStart(9, '0')}Z`;
}

/** docker events [--since T] [--until T] [--filter k=v]... [--format F] */
export default async function (argv: string[], g: Globals): Promise<number> {
  const p = parse(argv, { str: ['since', 'until', 'format'], multi: ['filter'], alias: { f: 'filter' } }, 'events');
  if (p.args.length) throw new TsrunError('"tsrun events" accepts no arguments (docker\'s form); `tsrun events ID` is the runtime\'s');
  const since = str(p, 'since') !== undefined ? parseTime(str(p, 'since')!, 'since') : undefined;
  const until = str(p, 'until') !== undefined ? parseTime(str(p, 'until')!, 'until') : undefined;
  const filters = parseFilters((p.flags.filter as string[]) ?? []);
  const format = str(p, 'format');
  const file = eventsFile(g.root);
  // name and image of containers the supervisor reported (it writes only the id and exitCode)
  const known = new Map(listContainers(g.root).map((c) => [c.id, c]));
  // ... or from the container's earlier events (a removed container has no record)
  const seen = new Map<string, Record<string, string>>();
  const print = (e: EventLine, ns: bigint) => {
    if (e.Type === 'container' && (!e.Actor.Attributes.name || !e.Actor.Attributes.image)) {
      if (!seen.has(e.Actor.ID) && !known.has(e.Actor.ID)) for (const c of listContainers(g.root)) known.set(c.id, c);
      const c = known.get(e.Actor.ID);
      const attrs = seen.get(e.Actor.ID) ?? (c ? { ...(c.labels ?? {}), image: c.image, name: c.name } : {});
      e.Actor.Attributes = { ...attrs, ...e.Actor.Attributes };
    }
    if (!matches(e, filters)) return;
    const attrs = Object.keys(e.Actor.Attributes).sort().map((k) => `${k}=${e.Actor.Attributes[k]}`).join(', ');
    if (!format) {
      process.stdout.write(`${isoNano(ns)} ${e.Type} ${e.Action} ${e.Actor.ID}${attrs ? ` (${attrs})` : ''}\n`);
      return;
    }
    const o = {
      // docker's legacy fields: status and id for containers and images, from for containers
      ...(e.Type === 'container' || e.Type === 'image' ? { status: e.Action, id: e.Actor.ID } : {}),
      ...(e.Type === 'container' ? { from: e.Actor.Attributes.image } : {}),
      Type: e.Type, Action: e.Action, Actor: e.Actor, scope: 'local', time: e.time, timeNano: 0,
    };
    // timeNano is beyond 2^53: written from the bigint
    const json = () => JSON.stringify(o).replace(/"timeNano":0}$/, `"timeNano":${ns}}`);
    process.stdout.write((format === 'json' || /^\{\{\s*json\s+\.\s*\}\}$/.test(format) ? json() : renderTemplate(format, { ...o, timeNano: String(ns) })) + '\n');
  };
  /** Complete lines of text; returns how many bytes they take (a partial last line waits). */
  const lines = (text: string): number => {
    const end = text.lastIndexOf('\n') + 1;
    for (const l of text.slice(0, end).split('\n')) {
      if (!l) continue;
      let e: EventLine;
      try { e = JSON.parse(l); } catch { continue; }
      const m = /"timeNano":(\d+)/.exec(l);
      const ns = m ? BigInt(m[1]) : BigInt(e.time ?? 0) * 1_000_000_000n;
      if (e.Type === 'container' && e.Actor.Attributes.name) {
        const { exitCode: _x, signal: _s, oldName: _o, ...keep } = e.Actor.Attributes;
        seen.set(e.Actor.ID, keep);
      }
      if ((since === undefined || ns >= since) && (until === undefined || ns <= until)) print(e, ns);
    }
    return Buffer.byteLength(text.slice(0, end));
  };
  // history: only with --since (docker shows past events only when asked)
  let pos = 0;
  let ino = 0;
  const readFrom = (first: boolean) => {
    let st: fs.Stats;
    try { st = fs.statSync(file); } catch { return; }
    if (st.ino !== ino) {
      // rotated: what was added to the old file since our last read is in events.jsonl.1
      if (ino && !first) {
        try {
          const old = fs.statSync(file + '.1');
          if (old.ino === ino && old.size > pos) lines(readRange(file + '.1', pos, old.size));
        } catch { /* gone */ }
      }
      ino = st.ino;
      pos = 0;
    }
    if (st.size > pos) pos += lines(readRange(file, pos, st.size));
  };
  if (since !== undefined) {
    try { lines(fs.readFileSync(file + '.1', 'utf8')); } catch { /* none */ }
    readFrom(true);
  } else {
    try { const st = fs.statSync(file); ino = st.ino; pos = st.size; } catch { /* none yet */ }
  }
  const nowNs = () => BigInt(Date.now()) * 1_000_000n;
  if (until !== undefined && until <= nowNs()) return 0;
  let stop = false;
  const onSig = () => { stop = true; };
  process.on('SIGINT', onSig);
  process.on('SIGTERM', onSig);
  while (!stop && (until === undefined || nowNs() < until)) {
    await sleep(100);
    readFrom(false);
  }
  readFrom(false);
  return 0;
}

function readRange(file: string, from: number, to: number): string {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(to - from);
    const n = fs.readSync(fd, b, 0, b.length, from);
    return b.subarray(0, n).toString();
  } finally {
    fs.closeSync(fd);
  }
}
