import fs = require('fs');
import path = require('path');
import { parse, type Globals } from '../args';
import { TsrunError } from '../../runtime/errors';
import { table, humanSize } from '../format';
import { ImageStore } from '../../image/store';
import { listContainers, containerPath } from '../../engine/containers';
import { containerState } from '../../engine/lifecycle';

export function du(p: string): number {
  let total = 0;
  const walk = (d: string) => {
    let entries: fs.Dirent[];
    try { entries = fs.readdirSync(d, { withFileTypes: true }); } catch { return; }
    for (const e of entries) {
      const f = path.join(d, e.name);
      if (e.isDirectory()) walk(f);
      else { try { total += fs.lstatSync(f).size; } catch { /* gone */ } }
    }
  };
  walk(p);
  return total;
}

/** docker system df: images, containers (their writable layers) and volumes, and what is reclaimable. */
export default function (argv: string[], g: Globals): number {
  if (argv[0] !== 'df') throw new TsrunError(`system: unknown subcommand "${argv[0] ?? ''}" (df)`);
  parse(argv.slice(1), { bool: ['verbose'], str: ['format'], alias: { v: 'verbose' } }, 'system df');
  const store = new ImageStore(g.root);
  const images = store.list();
  const containers = listContainers(g.root);
  const used = new Set(containers.map((c) => c.imageId));
  const imgSize = images.reduce((a, i) => a + i.size, 0);
  const imgReclaim = images.filter((i) => !used.has(i.id)).reduce((a, i) => a + i.size, 0);
  const running = containers.filter((c) => ['running', 'paused', 'restarting'].includes(containerState(g.root, c).status));
  const sizes = new Map(containers.map((c) => [c.id, du(path.join(containerPath(g.root, c.id), 'upper'))]));
  const ctSize = [...sizes.values()].reduce((a, b) => a + b, 0);
  const ctReclaim = containers.filter((c) => !running.includes(c)).reduce((a, c) => a + (sizes.get(c.id) ?? 0), 0);
  const volRoot = path.join(g.root, 'volumes');
  let vols: string[] = [];
  try { vols = fs.readdirSync(volRoot).filter((v) => fs.statSync(path.join(volRoot, v)).isDirectory()); } catch { /* none */ }
  const volSize = vols.reduce((a, v) => a + du(path.join(volRoot, v)), 0);
  const pct = (a: number, b: number) => (b ? ` (${Math.round((a / b) * 100)}%)` : '');
  process.stdout.write(table([
    ['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE'],
    ['Images', String(images.length), String(images.filter((i) => used.has(i.id)).length), humanSize(imgSize), humanSize(imgReclaim) + pct(imgReclaim, imgSize)],
    ['Containers', String(containers.length), String(running.length), humanSize(ctSize), humanSize(ctReclaim) + pct(ctReclaim, ctSize)],
    ['Local Volumes', String(vols.length), '0', humanSize(volSize), humanSize(0)],
    ['Build Cache', '0', '0', '0B', '0B'],
  ]));
  return 0;
}
