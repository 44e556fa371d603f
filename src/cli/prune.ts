// What docker's prune commands share: the confirmation prompt (skipped with -f) and the filters
// until= and label= / label!= (any other filter is refused, never ignored: a prune that drops a
// filter it does not know removes more than it was asked to).
import fs = require('fs');
import { TsrunError } from '../runtime/errors';
import { parseTime } from './commands/docker-events';

/** Print the warning and ask; true when the answer is y or yes. Reads one line from stdin (EOF: no). */
export function confirmed(warning: string): boolean {
  process.stdout.write(`${warning}\nAre you sure you want to continue? [y/N] `);
  const buf = Buffer.alloc(256);
  let line = '';
  for (;;) {
    let n = 0;
    try {
      n = fs.readSync(0, buf, 0, buf.length, null);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20); continue; }
      if (code === 'EOF') break;
      throw e;
    }
    if (n <= 0) break;
    line += buf.subarray(0, n).toString('utf8');
    if (line.includes('\n')) break;
  }
  return /^\s*y(es)?\s*$/i.test(line.split('\n')[0]);
}

/** Unless -f, the prompt; a "no" ends the command as docker's does. */
export function confirmOrCancel(cmd: string, force: boolean, warning: string): void {
  if (force) return;
  if (!confirmed(warning)) throw new TsrunError(`${cmd} has been cancelled`, 1);
}

export interface Prunable {
  created?: string;
  labels?: Record<string, string> | null;
}

/** label=KEY, label=KEY=VALUE (label! negates) as a test of a label map. */
export function labelFilter(k: 'label' | 'label!', v: string): (labels: Record<string, string> | null | undefined) => boolean {
  const j = v.indexOf('=');
  const lk = j < 0 ? v : v.slice(0, j), lv = j < 0 ? undefined : v.slice(j + 1);
  const has = (l: Record<string, string> | null | undefined) => !!l && Object.prototype.hasOwnProperty.call(l, lk) && (lv === undefined || l[lk] === lv);
  return k === 'label' ? has : (l) => !has(l);
}

/** The --filter values of a prune command as one predicate: true = may be removed. */
export function pruneFilter(cmd: string, filters: string[]): (o: Prunable) => boolean {
  const checks: ((o: Prunable) => boolean)[] = [];
  for (const f of filters) {
    const i = f.indexOf('=');
    if (i <= 0) throw new TsrunError(`${cmd}: bad format of filter (expected name=value): ${f}`);
    const k = f.slice(0, i), v = f.slice(i + 1);
    switch (k) {
      case 'until': {
        const limit = parseTime(v, 'until');
        checks.push((o) => o.created !== undefined && BigInt(Date.parse(o.created)) * 1_000_000n <= limit);
        break;
      }
      case 'label': case 'label!': {
        const m = labelFilter(k, v);
        checks.push((o) => m(o.labels));
        break;
      }
      default: throw new TsrunError(`${cmd}: invalid filter '${k}' (until, label, label!)`);
    }
  }
  return (o) => checks.every((c) => c(o));
}
