import fs = require('fs');
import { parse, str, needId, type Globals } from '../args';
import { loadRecord, saveRecord } from '../../runtime/state';
import { currentStatus } from '../../runtime/container';
import { loadCgroupManager } from '../../runtime/cgroups';
import { validateResources } from '../../runtime/validate';
import { TsrunError } from '../../runtime/errors';
import type { Resources } from '../../runtime/spec';
import { isEngineContainer } from '../../engine/containers';
import { engineCommand } from '../load-engine';

function num(p: ReturnType<typeof parse>, name: string): number | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  const m = /^(-?\d+)([kmg]?)b?$/i.exec(v.trim());
  if (!m) throw new TsrunError(`update: invalid value for --${name}: "${v}"`);
  return Number(m[1]) * ({ '': 1, k: 1024, m: 1 << 20, g: 1 << 30 } as Record<string, number>)[m[2].toLowerCase()];
}

export default function (argv: string[], g: Globals): Promise<number> | number {
  // docker's update: a container of the engine (by name or id), or docker-only flags
  const docker = argv.some((a) => /^(--restart|--cpus|-m)(=|$)/.test(a)) || argv.some((a) => !a.startsWith('-') && isEngineContainer(g.root, a));
  if (docker) return engineCommand('docker-update', argv, g);
  const p = parse(argv, {
    str: ['resources', 'memory', 'memory-swap', 'memory-reservation', 'pids-limit', 'cpu-shares', 'cpu-quota', 'cpu-period', 'cpuset-cpus', 'cpuset-mems', 'blkio-weight'],
    alias: { r: 'resources' },
  }, 'update');
  const id = needId(p, 'update');
  const rec = loadRecord(g.root, id);
  if (currentStatus(g.root, rec) === 'stopped') throw new TsrunError(`container ${id} is not running`);
  let r: Resources = {};
  const file = str(p, 'resources');
  if (file) {
    let text: string;
    try { text = fs.readFileSync(file === '-' ? 0 : file, 'utf8'); } catch (e) { throw new TsrunError(`update: read ${file}: ${(e as Error).message}`); }
    try { r = JSON.parse(text); } catch (e) { throw new TsrunError(`update: invalid resources JSON: ${(e as Error).message}`); }
    validateResources(r);
  }
  const set = <T extends object>(o: T | undefined): T => (o ?? {}) as T;
  const mem = num(p, 'memory'), swap = num(p, 'memory-swap'), resv = num(p, 'memory-reservation');
  if (mem !== undefined || swap !== undefined || resv !== undefined) {
    r.memory = { ...set(r.memory), ...(mem !== undefined && { limit: mem }), ...(swap !== undefined && { swap }), ...(resv !== undefined && { reservation: resv }) };
  }
  const pids = num(p, 'pids-limit');
  if (pids !== undefined) r.pids = { limit: pids };
  const shares = num(p, 'cpu-shares'), quota = num(p, 'cpu-quota'), period = num(p, 'cpu-period');
  const cpus = str(p, 'cpuset-cpus'), mems = str(p, 'cpuset-mems');
  if (shares !== undefined || quota !== undefined || period !== undefined || cpus || mems) {
    r.cpu = { ...set(r.cpu), ...(shares !== undefined && { shares }), ...(quota !== undefined && { quota }), ...(period !== undefined && { period }), ...(cpus && { cpus }), ...(mems && { mems }) };
  }
  const bw = num(p, 'blkio-weight');
  if (bw !== undefined) r.blockIO = { ...set(r.blockIO), weight: bw };
  try {
    loadCgroupManager(rec.cgroup).apply(r);
  } catch (e) {
    throw new TsrunError(`update ${id}: ${(e as Error).message}`);
  }
  const linux = (rec.config.linux ??= {});
  linux.resources = { ...(linux.resources ?? {}), ...r };
  saveRecord(g.root, rec);
  return 0;
}
