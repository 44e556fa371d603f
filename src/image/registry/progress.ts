// Renders pull/push progress. On a terminal: one line per layer, redrawn in place (ANSI
// cursor-up), at most every 100 ms, as docker does:
//   a3ed95caeb02: Downloading [==========>                                        ]  1.2MB/3.4MB
// Otherwise plain lines, one per state change ("a3ed95caeb02: Pull complete").
import type { Progress, ProgressEvent } from '../types';

type LayerStatus = Extract<ProgressEvent, { kind: 'layer' }>['status'];

const BAR = 50;
const THROTTLE_MS = 100;

/** Decimal sizes with 3 significant digits, as docker prints them: 1.23MB, 845kB, 12B. */
export function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return `${i === 0 ? String(Math.round(v)) : Number(v.toPrecision(3)).toString()}${units[i]}`;
}

function statusText(s: LayerStatus, push: boolean): string {
  switch (s) {
    case 'waiting': return push ? 'Preparing' : 'Waiting';
    case 'downloading': return 'Downloading';
    case 'verifying': return 'Download complete'; // verified while streaming
    case 'extracting': return 'Extracting';
    case 'done': return push ? 'Pushed' : 'Pull complete';
    case 'exists': return push ? 'Layer already exists' : 'Already exists';
    case 'mounted': return 'Mounted from another repository';
    case 'pushing': return 'Pushing';
    case 'pushed': return 'Pushed';
  }
}

function bar(current: number, total: number): string {
  const f = total > 0 ? Math.min(1, current / total) : 0;
  const n = Math.floor(f * BAR);
  const fill = n >= BAR ? '='.repeat(BAR) : '='.repeat(n) + '>' + ' '.repeat(BAR - n - 1);
  return `[${fill}] ${humanSize(current).padStart(8)}/${humanSize(total)}`;
}

export interface Renderer extends Progress {
  /** Draws what is pending now (call before printing anything else). */
  flush(): void;
}

/** A Progress that renders to `stream` (a TTY gets the redrawn view). */
export function progressRenderer(stream: NodeJS.WriteStream): Renderer {
  const tty = !!stream.isTTY && process.env.TERM !== 'dumb';
  let push = false;
  // Every line shown, in order: status lines and layer lines (a layer keeps its line).
  type Line = { id?: string; text: string; status?: LayerStatus; final?: boolean };
  const lines: Line[] = [];
  const byId = new Map<string, Line>();
  let drawn = 0;           // lines drawn by the last redraw (the cursor is below them)
  let timer: NodeJS.Timeout | undefined;
  let last = 0;

  const width = () => Math.max(20, (stream.columns || 120) - 1);

  const redraw = () => {
    if (timer) { clearTimeout(timer); timer = undefined; }
    last = Date.now();
    let out = drawn > 0 ? `\x1b[${drawn}A` : '';
    const w = width();
    for (const l of lines) out += `\r\x1b[2K${l.text.length > w ? l.text.slice(0, w) : l.text}\n`;
    drawn = lines.length;
    stream.write(out);
    // Finished lines at the top stay as they are on the screen: stop redrawing them.
    let k = 0;
    while (k < lines.length && lines[k].final) k++;
    if (k) { lines.splice(0, k); drawn -= k; }
  };
  const schedule = (now: boolean) => {
    if (now || Date.now() - last >= THROTTLE_MS) { redraw(); return; }
    if (!timer) { timer = setTimeout(redraw, THROTTLE_MS - (Date.now() - last)); timer.unref(); }
  };

  const fn = ((e: ProgressEvent) => {
    switch (e.kind) {
      case 'resolve':
      case 'digest':
        return; // the command prints these itself ("Pulling from ...", "Digest: ...")
      case 'status': {
        const text = e.text;
        if (!tty) { stream.write(text + '\n'); return; }
        lines.push({ text, final: true });
        schedule(true);
        return;
      }
      case 'layer': {
        if (e.status === 'pushing' || e.status === 'pushed' || e.status === 'mounted') push = true;
        let l = byId.get(e.id);
        const changed = !l || l.status !== e.status;
        if (!l) { l = { id: e.id, text: '' }; byId.set(e.id, l); lines.push(l); }
        l.status = e.status;
        l.final = e.status === 'done' || e.status === 'exists' || e.status === 'mounted' || e.status === 'pushed';
        const progress = (e.status === 'downloading' || e.status === 'extracting' || e.status === 'pushing') && e.total;
        l.text = `${e.id}: ${statusText(e.status, push)}${progress ? ' ' + bar(e.current ?? 0, e.total!) : ''}`;
        if (!tty) {
          if (changed && e.status !== 'downloading' && e.status !== 'extracting' && e.status !== 'pushing') {
            stream.write(`${e.id}: ${e.status === 'waiting' && !push ? 'Pulling fs layer' : statusText(e.status, push)}\n`);
          }
          return;
        }
        schedule(changed && e.status !== 'downloading' && e.status !== 'pushing');
        return;
      }
    }
  }) as Renderer;
  fn.flush = () => { if (tty && (timer || drawn !== lines.length)) redraw(); };
  return fn;
}
