import { parse, str, type Globals } from '../args';
import { listContainers, containerPath, type ContainerRecord } from '../../engine/containers';
import { containerState, statusText } from '../../engine/lifecycle';
import { table, ago, humanDuration, humanSize } from '../format';
import { familiar } from '../../image/ops';
import { renderRows } from '../template';
import { TsrunError } from '../../runtime/errors';

/** docker's SIZE column: the writable layer, and with the image ("virtual"). */
function sizeOf(g: Globals, c: { id: string; imageId: string }, imageSizes: Map<string, number>): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { du } = require('./system') as typeof import('./system');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const path = require('path') as typeof import('path');
  const rw = du(path.join(containerPath(g.root, c.id), 'upper'));
  return `${humanSize(rw)} (virtual ${humanSize(rw + (imageSizes.get(c.imageId) ?? 0))})`;
}

function labelMatch(labels: Record<string, string>, v: string): boolean {
  const i = v.indexOf('=');
  return i < 0 ? v in labels : labels[v.slice(0, i)] === v.slice(i + 1);
}

/** docker ps: CONTAINER ID, IMAGE, COMMAND, CREATED, STATUS, PORTS, NAMES. */
export default function (argv: string[], g: Globals): number {
  const p = parse(argv, { bool: ['all', 'quiet', 'no-trunc', 'latest', 'size'], str: ['format', 'last'], multi: ['filter'], alias: { a: 'all', q: 'quiet', l: 'latest', n: 'last', f: 'filter', s: 'size' } }, 'ps');
  const filters = ((p.flags.filter as string[]) ?? []).map((f) => { const i = f.indexOf('='); return [f.slice(0, i), f.slice(i + 1)]; });
  for (const [k, v] of filters) {
    if (!['name', 'id', 'status', 'ancestor', 'label', 'exited', 'health', 'network', 'volume'].includes(k)) throw new TsrunError(`invalid filter '${k}'`);
    if (k === 'health' && !['starting', 'healthy', 'unhealthy', 'none'].includes(v)) throw new TsrunError(`Unrecognised filter value for health: ${v}`);
  }
  // -n N / -l: the N last created containers, in any state (as -a)
  const lastRaw = p.flags.latest ? '1' : str(p, 'last');
  if (lastRaw !== undefined && !/^-?\d+$/.test(lastRaw)) throw new TsrunError(`invalid argument "${lastRaw}" for "-n, --last" flag: strconv.ParseInt: parsing "${lastRaw}": invalid syntax`);
  const last = lastRaw === undefined || Number(lastRaw) < 0 ? undefined : Number(lastRaw);
  const sorted = listContainers(g.root).sort((a, b) => (b.created > a.created ? 1 : -1));
  const rows = (last !== undefined && last > 0 ? sorted.slice(0, last) : sorted).map((c) => ({ c, s: containerState(g.root, c) }))
    .filter(({ c, s }) => (p.flags.all || (last !== undefined && last > 0) || s.status === 'running' || s.status === 'paused' || s.status === 'restarting')
      && filters.every(([k, v]) => (k === 'name' ? c.name.includes(v) : k === 'id' ? c.id.startsWith(v) : k === 'status' ? s.status === v
        : k === 'ancestor' ? c.image === v || c.imageId.includes(v) : k === 'label' ? labelMatch(c.labels ?? {}, v) : k === 'exited' ? String(s.exit?.exitCode) === v
          : k === 'health' ? (s.health ?? 'none') === v
            : k === 'network' ? [c.net?.mode, ...(c.net?.extra ?? []).map((e) => e.network)].includes(v)
              : (c.volumes ?? []).some((x) => x.name === v || x.destination === v))));
  const noTrunc = !!p.flags['no-trunc'];
  const ports = portsColumn(g.root, rows.map((r) => r.c));
  const cmd = (c: (typeof rows)[0]['c']) => {
    const s = c.args.join(' ');
    return JSON.stringify(noTrunc || s.length <= 20 ? s : s.slice(0, 19) + '…');
  };
  const format = str(p, 'format');
  let imageSizes = new Map<string, number>();
  if (p.flags.size) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { ImageStore } = require('../../image/store') as typeof import('../../image/store');
    imageSizes = new Map(new ImageStore(g.root).list().map((i) => [i.id, i.size]));
  }
  if (p.flags.quiet) {
    process.stdout.write(rows.map(({ c }) => (noTrunc ? c.id : c.id.slice(0, 12)) + '\n').join(''));
  } else if (format) {
    const objs = rows.map(({ c, s }) => ({ ID: noTrunc ? c.id : c.id.slice(0, 12), Image: familiar(c.image), Command: cmd(c), CreatedAt: c.created, RunningFor: ago(c.created).replace(/ ago$/, ''),
        Status: statusText(s, ago, humanDuration), State: s.status, Ports: ports(c), Names: c.name, Labels: Object.entries(c.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(','),
        ...(p.flags.size ? { Size: sizeOf(g, c, imageSizes) } : {}) }));
    process.stdout.write(renderRows(objs, format, { ID: 'CONTAINER ID', RunningFor: 'CREATED', CreatedAt: 'CREATED AT' }));
  } else {
    const size = !!p.flags.size;
    process.stdout.write(table([['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES', ...(size ? ['SIZE'] : [])],
      ...rows.map(({ c, s }) => [noTrunc ? c.id : c.id.slice(0, 12), c.image, cmd(c), ago(c.created), statusText(s, ago, humanDuration), ports(c), c.name, ...(size ? [sizeOf(g, c, imageSizes)] : [])])]));
  }
  return 0;
}

/** PORTS: `0.0.0.0:8080->80/tcp, ...` of running containers (network/ loaded only when some container has a network). */
function portsColumn(root: string, cs: ContainerRecord[]): (c: ContainerRecord) => string {
  if (!cs.some((c) => c.net?.ports?.length)) return () => '';
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const net = require('../../engine/network') as typeof import('../../engine/network');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { formatPs } = require('../../engine/network/ports') as typeof import('../../engine/network/ports');
  net.reconcile(root);
  return (c) => (c.net?.ports?.length ? (net.attachmentOf(root, c.id)?.ports ?? []).map(formatPs).join(', ') : '');
}
