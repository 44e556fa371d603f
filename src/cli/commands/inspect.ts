import { parse, str, type Globals } from '../args';
import { openStore, resolveImage, inspectImage } from '../../image/ops';
import { TsrunError } from '../../runtime/errors';

/** `tsrun inspect` (images for now; containers come with the engine) and `tsrun image inspect`. */
export function inspectImages(argv: string[], g: Globals): number {
  const p = parse(argv, { str: ['format', 'type'], alias: { f: 'format' } }, 'inspect');
  if (!p.args.length) throw new TsrunError('inspect: requires at least 1 argument');
  const store = openStore(g.root);
  const out: unknown[] = [];
  let code = 0;
  for (const key of p.args) {
    try {
      out.push(inspectImage(store, resolveImage(store, key)));
    } catch (e) {
      process.stderr.write(`Error: ${(e as Error).message}\n`);
      code = 1;
    }
  }
  const format = str(p, 'format');
  if (format) {
    // a small subset of Go templates: {{.Field.Sub}} and {{json .Field}}
    for (const o of out) process.stdout.write(renderTemplate(format, o) + '\n');
  } else {
    process.stdout.write(JSON.stringify(out, null, 4) + '\n');
  }
  return code;
}

function get(o: unknown, p: string): unknown {
  return p.split('.').filter(Boolean).reduce<unknown>((x, k) => (x && typeof x === 'object' ? (x as Record<string, unknown>)[k] : undefined), o);
}

export function renderTemplate(t: string, o: unknown): string {
  return t.replace(/\{\{\s*(json\s+)?\.([\w.]*)\s*\}\}/g, (_m, json: string | undefined, p: string) => {
    const v = get(o, p);
    if (json) return JSON.stringify(v ?? null);
    if (v === undefined || v === null) return '<no value>';
    if (Array.isArray(v)) return `[${v.join(' ')}]`;
    if (typeof v === 'object') return `map[${Object.entries(v as object).map(([k, x]) => `${k}:${x}`).join(' ')}]`;
    return String(v);
  });
}

export default inspectImages;
