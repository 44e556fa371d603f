// tsrun volume create|ls|inspect|rm|prune — docker's volume commands for the "local" driver.
import { parse, str, type Globals } from '../args';
import { TsrunError } from '../../runtime/errors';
import * as vol from '../../engine/volumes';
import { confirmOrCancel, labelFilter } from '../prune';

const USAGE = `Usage:  tsrun volume COMMAND

Manage volumes

Commands:
  create      Create a volume
  inspect     Display detailed information on one or more volumes
  ls          List volumes
  prune       Remove unused local volumes
  rm          Remove one or more volumes
`;

export default function (argv: string[], g: Globals): number {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'create': return create(rest, g);
    case 'ls': case 'list': return ls(rest, g);
    case 'inspect': return inspect(rest, g);
    case 'rm': case 'remove': return rm(rest, g);
    case 'prune': return prune(rest, g);
    case undefined: case 'help': case '--help':
      process.stdout.write(USAGE);
      return sub ? 0 : 1;
    default: throw new TsrunError(`unknown volume command "${sub}" (create, inspect, ls, prune, rm)`);
  }
}

function labelMap(list: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of list ?? []) {
    const i = l.indexOf('=');
    out[i < 0 ? l : l.slice(0, i)] = i < 0 ? '' : l.slice(i + 1);
  }
  return out;
}

function daemonError(e: unknown): void {
  process.stderr.write(`Error response from daemon: ${(e as Error).message}\n`);
}

function create(argv: string[], g: Globals): number {
  const p = parse(argv, { str: ['driver', 'name'], multi: ['label', 'opt'], alias: { d: 'driver', l: 'label', o: 'opt' } }, 'volume create');
  if (p.args.length > 1) throw new TsrunError('"tsrun volume create" requires at most 1 argument');
  const name = p.args[0] ?? str(p, 'name');
  if (p.args[0] !== undefined && str(p, 'name') !== undefined && p.args[0] !== str(p, 'name')) {
    throw new TsrunError(`conflicting options: either specify --name or provide positional arg, not both`);
  }
  const driver = str(p, 'driver') ?? 'local';
  try {
    if (driver !== 'local') throw new TsrunError(`create ${name ?? ''}: error looking up volume plugin ${driver}: plugin "${driver}" not found`);
    if ((p.flags.opt as string[] | undefined)?.length) throw new TsrunError(`create ${name ?? ''}: driver options (-o) are not supported by tsrun's local volumes`);
    const { volume } = vol.createVolume(g.root, name, labelMap(p.flags.label as string[] | undefined));
    process.stdout.write(volume.Name + '\n');
    return 0;
  } catch (e) {
    daemonError(e);
    return 1;
  }
}

/** --filter dangling=BOOL, name=SUBSTRING, label=KEY[=VALUE], driver=local: docker's volume filters. */
export function filterFn(root: string, filters: string[]): (v: vol.VolumeInfo) => boolean {
  const checks: ((v: vol.VolumeInfo) => boolean)[] = [];
  for (const f of filters) {
    const i = f.indexOf('=');
    if (i < 0) throw new TsrunError(`invalid filter '${f}'`);
    const k = f.slice(0, i), val = f.slice(i + 1);
    switch (k) {
      case 'dangling': {
        if (!['true', 'false', '1', '0'].includes(val)) throw new TsrunError(`invalid filter 'dangling=${val}'`);
        const want = val === 'true' || val === '1';
        checks.push((v) => (vol.volumeUsers(root, v.Name).length === 0) === want);
        break;
      }
      case 'name': checks.push((v) => v.Name.includes(val)); break;
      case 'driver': checks.push(() => val === 'local'); break;
      case 'label': case 'label!': {
        const m = labelFilter(k, val);
        checks.push((v) => m(v.Labels));
        break;
      }
      default: throw new TsrunError(`invalid filter '${k}'`);
    }
  }
  return (v) => checks.every((c) => c(v));
}

function ls(argv: string[], g: Globals): number {
  const p = parse(argv, { bool: ['quiet'], str: ['format'], multi: ['filter'], alias: { q: 'quiet', f: 'filter' } }, 'volume ls');
  const keep = filterFn(g.root, (p.flags.filter as string[] | undefined) ?? []);
  const vols = vol.listVolumes(g.root).filter(keep);
  if (p.flags.quiet) {
    process.stdout.write(vols.map((v) => v.Name + '\n').join(''));
    return 0;
  }
  const format = str(p, 'format');
  if (format) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { renderRows } = require('../template') as typeof import('../template');
    process.stdout.write(renderRows(vols.map((v) => ({ ...v, Labels: Object.entries(v.Labels).map(([k, x]) => `${k}=${x}`).join(',') })), format, { Name: 'VOLUME NAME' }));
    return 0;
  }
  // docker's tabwriter: min width 10, padding 3
  const w = Math.max(10, ...['DRIVER', ...vols.map((v) => v.Driver)].map((s) => s.length + 3));
  process.stdout.write('DRIVER'.padEnd(w) + 'VOLUME NAME\n' + vols.map((v) => v.Driver.padEnd(w) + v.Name + '\n').join(''));
  return 0;
}

function inspect(argv: string[], g: Globals): number {
  const p = parse(argv, { str: ['format'], alias: { f: 'format' } }, 'volume inspect');
  if (!p.args.length) throw new TsrunError('"tsrun volume inspect" requires at least 1 argument');
  const out: vol.VolumeInfo[] = [];
  let code = 0;
  for (const name of p.args) {
    const v = vol.getVolume(g.root, name);
    if (!v) {
      process.stderr.write(`Error: No such volume: ${name}\n`);
      code = 1;
      continue;
    }
    out.push(v);
  }
  const format = str(p, 'format');
  if (format) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { renderTemplate } = require('./inspect') as typeof import('./inspect');
    for (const v of out) process.stdout.write(renderTemplate(format, v) + '\n');
  } else {
    process.stdout.write(JSON.stringify(out, null, 4) + '\n');
  }
  return code;
}

function rm(argv: string[], g: Globals): number {
  const p = parse(argv, { bool: ['force'], alias: { f: 'force' } }, 'volume rm');
  if (!p.args.length) throw new TsrunError('"tsrun volume rm" requires at least 1 argument');
  let code = 0;
  for (const name of p.args) {
    try {
      if (p.flags.force && !vol.getVolume(g.root, name)) continue; // -f: an unknown name is not an error
      vol.removeVolume(g.root, name); // in use: refused with -f too, as docker does
      process.stdout.write(name + '\n');
    } catch (e) {
      daemonError(e);
      code = 1;
    }
  }
  return code;
}

function prune(argv: string[], g: Globals): number {
  const p = parse(argv, { bool: ['all', 'force'], multi: ['filter'], alias: { a: 'all', f: 'force' } }, 'volume prune');
  const keep = filterFn(g.root, (p.flags.filter as string[] | undefined) ?? []);
  confirmOrCancel('volume prune', !!p.flags.force, p.flags.all ? 'WARNING! This will remove all local volumes not used by at least one container.' : 'WARNING! This will remove anonymous local volumes not used by at least one container.');
  const { deleted, bytes } = vol.pruneVolumes(g.root, !!p.flags.all, keep);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { humanSize } = require('../format') as typeof import('../format');
  if (deleted.length) process.stdout.write(`Deleted Volumes:\n${deleted.join('\n')}\n\n`);
  process.stdout.write(`Total reclaimed space: ${humanSize(bytes)}\n`);
  return 0;
}
