import { parse, str, type Globals } from '../args';
import { listContainers, type ContainerRecord } from '../../engine/containers';
import { containerState, statusText } from '../../engine/lifecycle';
import { table, ago, humanDuration } from '../format';
import { familiar } from '../../image/ops';
import { renderTemplate } from './inspect';

/** docker ps: CONTAINER ID, IMAGE, COMMAND, CREATED, STATUS, PORTS, NAMES. */
export default function (argv: string[], g: Globals): number {
  const p = parse(argv, { bool: ['all', 'quiet', 'no-trunc', 'latest', 'size'], str: ['format', 'last'], multi: ['filter'], alias: { a: 'all', q: 'quiet', l: 'latest', n: 'last', f: 'filter', s: 'size' } }, 'ps');
  const filters = ((p.flags.filter as string[]) ?? []).map((f) => { const i = f.indexOf('='); return [f.slice(0, i), f.slice(i + 1)]; });
  const rows = listContainers(g.root).sort((a, b) => (b.created > a.created ? 1 : -1)).map((c) => ({ c, s: containerState(g.root, c) }))
    .filter(({ c, s }) => (p.flags.all || s.status === 'running' || s.status === 'paused' || s.status === 'restarting')
      && filters.every(([k, v]) => (k === 'name' ? c.name.includes(v) : k === 'id' ? c.id.startsWith(v) : k === 'status' ? s.status === v
        : k === 'ancestor' ? c.image === v || c.imageId.includes(v) : k === 'label' ? true : k === 'exited' ? String(s.exit?.exitCode) === v : true)));
  const noTrunc = !!p.flags['no-trunc'];
  const ports = portsColumn(g.root, rows.map((r) => r.c));
  const cmd = (c: (typeof rows)[0]['c']) => {
    const s = c.args.join(' ');
    return JSON.stringify(noTrunc || s.length <= 20 ? s : s.slice(0, 19) + '…');
  };
  const format = str(p, 'format');
  if (p.flags.quiet) {
    process.stdout.write(rows.map(({ c }) => (noTrunc ? c.id : c.id.slice(0, 12)) + '\n').join(''));
  } else if (format) {
    for (const { c, s } of rows) {
      const o = { ID: noTrunc ? c.id : c.id.slice(0, 12), Image: familiar(c.image), Command: cmd(c), CreatedAt: c.created, RunningFor: ago(c.created).replace(/ ago$/, ''),
        Status: statusText(s, ago, humanDuration), State: s.status, Ports: ports(c), Names: c.name };
      process.stdout.write((format === 'json' || format === '{{json .}}' ? JSON.stringify(o) : renderTemplate(format, o)) + '\n');
    }
  } else {
    process.stdout.write(table([['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES'],
      ...rows.map(({ c, s }) => [noTrunc ? c.id : c.id.slice(0, 12), c.image, cmd(c), ago(c.created), statusText(s, ago, humanDuration), ports(c), c.name])]));
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
