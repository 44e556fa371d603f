import fs = require('fs');
import path = require('path');
import { parse, type Globals } from '../args';
import { TsrunError } from '../../runtime/errors';
import { table, humanSize } from '../format';
import { ImageStore } from '../../image/store';
import { listContainers, containerPath } from '../../engine/containers';
import { containerState } from '../../engine/lifecycle';
import { confirmOrCancel, pruneFilter } from '../prune';

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

/** docker system df|prune|info|events. */
export default function (argv: string[], g: Globals): Promise<number> | number {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'df': return df(rest, g);
    case 'prune': return prune(rest, g);
    case 'info': return (require('./info') as typeof import('./info')).default(rest, g);
    case 'events': return (require('./docker-events') as typeof import('./docker-events')).default(rest, g);
    case '--help': case 'help':
      process.stdout.write('\nUsage:  tsrun system COMMAND\n\nManage tsrun\n\nCommands:\n  df          Show disk usage\n  events      Get real time events from the engine\n  info        Display system-wide information\n  prune       Remove unused data\n');
      return 0;
    default: throw new TsrunError(`system: unknown subcommand "${sub ?? ''}" (df, events, info, prune)`);
  }
}

/**
 * docker system prune [-a] [-f] [--volumes] [--filter until=|label=]: stopped containers, networks no
 * container uses, (with --volumes) anonymous volumes no container uses, dangling images (all unused
 * ones with -a). tsrun has no build cache.
 */
function prune(argv: string[], g: Globals): number {
  const p = parse(argv, { bool: ['all', 'force', 'volumes'], multi: ['filter'], alias: { a: 'all', f: 'force' } }, 'system prune');
  const filters = (p.flags.filter as string[] | undefined) ?? [];
  const keep = pruneFilter('system prune', filters);
  const labelFilters = filters.filter((f) => f.startsWith('label=') || f.startsWith('label!='));
  if (p.flags.volumes && filters.some((f) => f.startsWith('until='))) throw new TsrunError('system prune: the until filter is not supported with --volumes');
  confirmOrCancel('system prune', !!p.flags.force, [
    'WARNING! This will remove:',
    '  - all stopped containers',
    '  - all networks not used by at least one container',
    ...(p.flags.volumes ? ['  - all anonymous volumes not used by at least one container'] : []),
    p.flags.all ? '  - all images without at least one container associated to them' : '  - all dangling images',
    '',
  ].join('\n'));
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { pruneContainers } = require('./container') as typeof import('./container');
  const { pruneUnusedNetworks } = require('./network') as typeof import('./network');
  const { pruneImages } = require('./image-prune') as typeof import('./image-prune');
  const { filterFn } = require('./volume') as typeof import('./volume');
  const { pruneVolumes } = require('../../engine/volumes') as typeof import('../../engine/volumes');
  /* eslint-enable @typescript-eslint/no-require-imports */
  let out = '';
  let bytes = 0;
  const section = (title: string, items: string[]) => { if (items.length) out += `Deleted ${title}:\n${items.join('\n')}\n\n`; };
  const cts = pruneContainers(g.root, keep);
  section('Containers', cts.deleted);
  bytes += cts.bytes;
  section('Networks', pruneUnusedNetworks(g.root, filters));
  if (p.flags.volumes) {
    const vols = pruneVolumes(g.root, false, filterFn(g.root, labelFilters));
    section('Volumes', vols.deleted);
    bytes += vols.bytes;
  }
  const imgs = pruneImages(g.root, !!p.flags.all, filters);
  section('Images', imgs.deleted);
  bytes += imgs.bytes;
  process.stdout.write(`${out}Total reclaimed space: ${humanSize(bytes)}\n`);
  return 0;
}

/** docker system df: images, containers (their writable layers) and volumes, and what is reclaimable. */
function df(argv: string[], g: Globals): number {
  parse(argv, { bool: ['verbose'], str: ['format'], alias: { v: 'verbose' } }, 'system df');
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
