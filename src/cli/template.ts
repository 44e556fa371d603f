// Go text/template, the part Docker users write in --format: fields ({{.State.Status}}, {{.}}),
// variables ($, $v, {{range $k, $v := .X}}), pipelines ({{.Names | json}}), range/if/else/with/end,
// {{- and -}} trimming, and the functions Go and Docker's CLI add (json, index, len, join, split,
// lower, upper, title, truncate, pad, printf, print, println, eq/ne/lt/le/gt/ge, and/or/not, table).
// Values print as Go prints them: map[k:v] with sorted keys, [a b] for slices, <no value> for a
// missing key.
import { TsrunError } from '../runtime/errors';

type Node =
  | { k: 'text'; s: string }
  | { k: 'out'; p: Pipe }
  | { k: 'if' | 'with'; p: Pipe; then: Node[]; else: Node[] }
  | { k: 'range'; p: Pipe; vars: string[]; body: Node[]; else: Node[] };
type Arg = { k: 'field'; base: string | null; path: string[] } | { k: 'lit'; v: unknown } | { k: 'fn'; name: string } | { k: 'sub'; p: Pipe; path: string[] };
interface Cmd { args: Arg[] }
interface Pipe { decl: string[]; cmds: Cmd[] }

const cache = new Map<string, Node[]>();

export function renderTemplate(src: string, data: unknown): string {
  let nodes = cache.get(src);
  if (!nodes) { nodes = parse(src); cache.set(src, nodes); }
  const out: string[] = [];
  exec(nodes, data, new Map([['$', data]]), out);
  return out.join('');
}

// ---- lexing and parsing ----------------------------------------------------------------------
function parse(src: string): Node[] {
  const parts: ({ text: string } | { action: string })[] = [];
  let i = 0;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    if (open < 0) { parts.push({ text: src.slice(i) }); break; }
    let text = src.slice(i, open);
    let j = open + 2;
    if (src[j] === '-' && /\s/.test(src[j + 1] ?? '')) { text = text.replace(/\s+$/, ''); j += 2; }
    const close = findClose(src, j);
    if (close < 0) throw bad(src, 'unclosed action');
    let body = src.slice(j, close);
    let next = close + 2;
    if (/\s-$/.test(body)) { body = body.slice(0, -2); while (next < src.length && /\s/.test(src[next])) next++; }
    if (text) parts.push({ text });
    parts.push({ action: body.trim() });
    i = next;
  }
  let pos = 0;
  // {{if X}}..{{else if Y}}..{{else}}..{{end}}: the else-if is an {{if}} inside the else that shares the {{end}}
  const control = (word: string, pipeSrc: string): Node => {
    const pipe = parsePipe(pipeSrc, src);
    const then = list(['end', 'else']);
    let els: Node[] = [];
    if (then.end !== 'end') {
      const rest = then.end.slice(4).trim();
      const w2 = rest.split(/\s+/)[0];
      if (!rest) els = list(['end']).nodes;
      else if (w2 === 'if' || w2 === 'with') els = [control(w2, rest.slice(w2.length))];
      else throw bad(src, `unexpected {{${then.end}}}`);
    }
    if (word === 'range') return { k: 'range', p: { decl: [], cmds: pipe.cmds }, vars: pipe.decl, body: then.nodes, else: els };
    return { k: word as 'if' | 'with', p: pipe, then: then.nodes, else: els };
  };
  const list = (ends: string[]): { nodes: Node[]; end: string } => {
    const nodes: Node[] = [];
    while (pos < parts.length) {
      const p = parts[pos++];
      if ('text' in p) { nodes.push({ k: 'text', s: p.text }); continue; }
      const a = p.action;
      if (a.startsWith('/*')) continue;
      const word = a.split(/\s+/)[0];
      if (word === 'end' || word === 'else') {
        if (!ends.includes(word)) throw bad(src, `unexpected {{${a}}}`);
        return { nodes, end: a };
      }
      if (word === 'if' || word === 'with' || word === 'range') { nodes.push(control(word, a.slice(word.length))); continue; }
      if (word === 'define' || word === 'template' || word === 'block') throw bad(src, `{{${word}}} is not supported`);
      nodes.push({ k: 'out', p: parsePipe(a, src) });
    }
    if (ends.length) throw bad(src, 'missing {{end}}');
    return { nodes, end: '' };
  };
  return list([]).nodes;
}

function findClose(src: string, from: number): number {
  let q: string | null = null;
  for (let i = from; i < src.length - 1; i++) {
    const c = src[i];
    if (q) { if (c === '\\' && q === '"') i++; else if (c === q) q = null; continue; }
    if (c === '"' || c === '`' || c === "'") q = c;
    else if (c === '}' && src[i + 1] === '}') return i;
  }
  return -1;
}

function bad(src: string, why: string): TsrunError {
  return new TsrunError(`template parsing error: template: ${JSON.stringify(src)}: ${why}`, 125);
}

function tokens(s: string, src: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (/\s/.test(c)) { i++; continue; }
    if (c === '"' || c === '`') {
      let j = i + 1;
      while (j < s.length && s[j] !== c) j += c === '"' && s[j] === '\\' ? 2 : 1;
      if (j >= s.length) throw bad(src, 'unterminated string');
      out.push(s.slice(i, j + 1)); i = j + 1; continue;
    }
    if (c === '(' || c === ')' || c === '|' || c === ',') { out.push(c); i++; continue; }
    if (c === ':' && s[i + 1] === '=') { out.push(':='); i += 2; continue; }
    if (c === '=') { out.push('='); i++; continue; }
    let j = i;
    while (j < s.length && !/[\s()|,]/.test(s[j]) && !(s[j] === ':' && s[j + 1] === '=')) j++;
    out.push(s.slice(i, j)); i = j;
  }
  return out;
}

function parsePipe(s: string, src: string): Pipe {
  const t = tokens(s, src);
  let i = 0;
  const decl: string[] = [];
  // $x := / $k, $v :=
  const save = i;
  while (i < t.length && t[i].startsWith('$')) {
    decl.push(t[i++]);
    if (t[i] === ',') { i++; continue; }
    break;
  }
  if (decl.length && (t[i] === ':=' || t[i] === '=')) i++;
  else { decl.length = 0; i = save; }
  const pipe = (): Pipe => {
    const cmds: Cmd[] = [];
    let args: Arg[] = [];
    while (i < t.length && t[i] !== ')') {
      const x = t[i++];
      if (x === '|') { if (!args.length) throw bad(src, 'missing command before |'); cmds.push({ args }); args = []; continue; }
      if (x === '(') {
        const p = pipe();
        if (t[i++] !== ')') throw bad(src, 'unclosed (');
        // (pipeline).Field.Sub
        const path = t[i]?.startsWith('.') && t[i].length > 1 ? t[i++].slice(1).split('.') : [];
        args.push({ k: 'sub', p, path });
        continue;
      }
      args.push(arg(x, src));
    }
    if (args.length) cmds.push({ args });
    if (!cmds.length) throw bad(src, 'missing value for command');
    return { decl: [], cmds };
  };
  const p = pipe();
  if (i < t.length) throw bad(src, `unexpected "${t[i]}"`);
  return { decl, cmds: p.cmds };
}

function arg(x: string, src: string): Arg {
  if (x.startsWith('"')) return { k: 'lit', v: JSON.parse(x) };
  if (x.startsWith('`')) return { k: 'lit', v: x.slice(1, -1) };
  if (/^-?\d+(\.\d+)?$/.test(x)) return { k: 'lit', v: Number(x) };
  if (x === 'true' || x === 'false') return { k: 'lit', v: x === 'true' };
  if (x === 'nil') return { k: 'lit', v: null };
  if (x === '.') return { k: 'field', base: null, path: [] };
  if (x.startsWith('.')) return { k: 'field', base: null, path: x.slice(1).split('.') };
  if (x.startsWith('$')) { const [b, ...path] = x.split('.'); return { k: 'field', base: b, path }; }
  if (/^[A-Za-z_]\w*$/.test(x)) return { k: 'fn', name: x };
  throw bad(src, `unexpected "${x}" in command`);
}

// ---- execution -------------------------------------------------------------------------------
type Vars = Map<string, unknown>;

function exec(nodes: Node[], dot: unknown, vars: Vars, out: string[]): void {
  for (const n of nodes) {
    switch (n.k) {
      case 'text': out.push(n.s); break;
      case 'out': { const v = runPipe(n.p, dot, vars); if (!n.p.decl.length) out.push(show(v)); break; }
      case 'if': case 'with': {
        const v = runPipe(n.p, dot, vars);
        if (truthy(v)) exec(n.then, n.k === 'with' ? v : dot, new Map(vars), out);
        else exec(n.else, dot, new Map(vars), out);
        break;
      }
      case 'range': {
        const v = runPipe(n.p, dot, vars);
        const entries: [unknown, unknown][] = Array.isArray(v) ? v.map((x, i) => [i, x])
          : v && typeof v === 'object' ? Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]])
            : typeof v === 'number' ? Array.from({ length: v }, (_, i) => [i, i]) : [];
        if (!entries.length) { exec(n.else, dot, new Map(vars), out); break; }
        for (const [k, x] of entries) {
          const inner = new Map(vars);
          if (n.vars.length === 1) inner.set(n.vars[0], x);
          if (n.vars.length === 2) { inner.set(n.vars[0], k); inner.set(n.vars[1], x); }
          exec(n.body, x, inner, out);
        }
        break;
      }
    }
  }
}

function runPipe(p: Pipe, dot: unknown, vars: Vars): unknown {
  let prev: unknown;
  let has = false;
  for (const c of p.cmds) {
    prev = runCmd(c, dot, vars, has ? [prev] : []);
    has = true;
  }
  for (const d of p.decl) vars.set(d, prev);
  return prev;
}

function value(a: Arg, dot: unknown, vars: Vars): unknown {
  switch (a.k) {
    case 'lit': return a.v;
    case 'sub': return dig(runPipe(a.p, dot, vars), a.path);
    case 'fn': return call(a.name, []);
    case 'field': {
      let v: unknown = a.base === null ? dot : vars.has(a.base) ? vars.get(a.base) : (() => { throw new TsrunError(`template: undefined variable "${a.base}"`, 125); })();
      return dig(v, a.path);
    }
  }
}

function dig(v: unknown, path: string[]): unknown {
  for (const k of path) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

function runCmd(c: Cmd, dot: unknown, vars: Vars, piped: unknown[]): unknown {
  const [head, ...rest] = c.args;
  if (head.k === 'fn') return call(head.name, [...rest.map((a) => value(a, dot, vars)), ...piped]);
  if (rest.length) throw new TsrunError(`template: can't give argument to non-function ${head.k === 'field' ? '.' + head.path.join('.') : 'value'}`, 125);
  if (piped.length) throw new TsrunError('template: can\'t pipe into a non-function', 125);
  return value(head, dot, vars);
}

function truthy(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v as object).length > 0;
  return true;
}

/** Go's %v. */
export function show(v: unknown): string {
  if (v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (Array.isArray(v)) return `[${v.map(show).join(' ')}]`;
  if (typeof v === 'object') return `map[${Object.keys(v as object).sort().map((k) => `${k}:${show((v as Record<string, unknown>)[k])}`).join(' ')}]`;
  return String(v);
}

function cmp(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
}

function sprintf(f: string, args: unknown[]): string {
  let i = 0;
  return f.replace(/%([-+ 0#]*)(\d*)(?:\.(\d+))?([vsdqfx%])/g, (m, flags: string, w: string, prec: string, verb: string) => {
    if (verb === '%') return '%';
    const a = args[i++];
    let s = verb === 'q' ? JSON.stringify(String(a)) : verb === 'd' ? String(Math.trunc(Number(a))) : verb === 'f' ? Number(a).toFixed(prec ? Number(prec) : 6)
      : verb === 'x' ? (typeof a === 'number' ? a.toString(16) : Buffer.from(String(a)).toString('hex')) : show(a);
    if (w) s = flags.includes('-') ? s.padEnd(Number(w)) : s.padStart(Number(w), flags.includes('0') && verb !== 's' ? '0' : ' ');
    return s;
  });
}

function call(name: string, a: unknown[]): unknown {
  switch (name) {
    case 'json': return JSON.stringify(a[0] ?? null);
    case 'index': {
      let v = a[0];
      for (const k of a.slice(1)) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[String(k)] : undefined;
      return v;
    }
    case 'len': return Array.isArray(a[0]) || typeof a[0] === 'string' ? (a[0] as { length: number }).length : a[0] && typeof a[0] === 'object' ? Object.keys(a[0] as object).length : 0;
    case 'join': return Array.isArray(a[0]) ? a[0].map(show).join(String(a[1] ?? '')) : show(a[0]);
    case 'split': return String(a[0] ?? '').split(String(a[1] ?? ''));
    case 'lower': return String(a[0] ?? '').toLowerCase();
    case 'upper': return String(a[0] ?? '').toUpperCase();
    case 'title': return String(a[0] ?? '').replace(/\b\w/g, (c) => c.toUpperCase());
    case 'truncate': return String(a[0] ?? '').slice(0, Number(a[1]));
    case 'pad': return ' '.repeat(Number(a[1] ?? 0)) + show(a[0]) + ' '.repeat(Number(a[2] ?? 0));
    case 'println': return a.map(show).join(' ') + '\n';
    case 'print': return a.map(show).join('');
    case 'printf': return sprintf(String(a[0] ?? ''), a.slice(1));
    case 'eq': return a.slice(1).some((b) => cmp(a[0], b) === 0);
    case 'ne': return cmp(a[0], a[1]) !== 0;
    case 'lt': return cmp(a[0], a[1]) < 0;
    case 'le': return cmp(a[0], a[1]) <= 0;
    case 'gt': return cmp(a[0], a[1]) > 0;
    case 'ge': return cmp(a[0], a[1]) >= 0;
    case 'and': return a.find((x) => !truthy(x)) ?? a[a.length - 1];
    case 'or': return a.find((x) => truthy(x)) ?? a[a.length - 1];
    case 'not': return !truthy(a[0]);
    default: throw new TsrunError(`template: function "${name}" not defined`, 125);
  }
}

/**
 * Rows as docker's --format prints them: "json" / "{{json .}}" (a JSON object a line), "table
 * TEMPLATE" (a header from `headers`, else the field names in capitals, then aligned columns split
 * on \t), or a template per row. `\t` in the format is a tab, as docker reads it.
 */
export function renderRows(rows: Record<string, unknown>[], format: string, headers: Record<string, string>): string {
  if (format === 'json' || /^\{\{\s*json\s+\.\s*\}\}$/.test(format)) return rows.map((r) => JSON.stringify(r) + '\n').join('');
  const tpl = format.replace(/\\t/g, '\t');
  const m = /^table(\s+|$)([\s\S]*)$/.exec(tpl);
  if (!m) return rows.map((r) => renderTemplate(tpl, r) + '\n').join('');
  const body = m[2];
  const head = body.replace(/\{\{\s*\.(\w+)\s*\}\}/g, (_x, k: string) => headers[k] ?? k.replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase());
  const lines = [head, ...rows.map((r) => renderTemplate(body, r))].map((l) => l.split('\t'));
  const widths: number[] = [];
  for (const l of lines) l.forEach((c, i) => { widths[i] = Math.max(widths[i] ?? 0, c.length); });
  return lines.map((l) => l.map((c, i) => (i === l.length - 1 ? c : c.padEnd(widths[i] + 3))).join('').trimEnd() + '\n').join('');
}
