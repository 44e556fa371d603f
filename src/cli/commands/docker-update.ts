// docker update [OPTIONS] CONTAINER...: resource limits (applied to a running container's cgroups at
// once, and kept in its config.json for its next start) and the restart policy (the supervisor
// reads DIR/restart-policy when the container next exits).
import fs = require('fs');
import path = require('path');
import { parse, str, type Globals } from '../args';
import { TsrunError } from '../../runtime/errors';
import type { Resources, Spec } from '../../runtime/spec';
import { findContainer, saveContainer, containerPath } from '../../engine/containers';
import { containerState } from '../../engine/lifecycle';

export const UPDATE_FLAGS = {
  str: ['resources', 'memory', 'memory-swap', 'memory-reservation', 'pids-limit', 'cpu-shares', 'cpu-quota', 'cpu-period', 'cpuset-cpus', 'cpuset-mems',
    'blkio-weight', 'cpus', 'restart'],
  alias: { r: 'resources', m: 'memory', c: 'cpu-shares' },
};

export default function (argv: string[], g: Globals): number {
  const p = parse(argv, UPDATE_FLAGS, 'update');
  if (!p.args.length) throw new TsrunError('"tsrun update" requires at least 1 argument: tsrun update [OPTIONS] CONTAINER [CONTAINER...]');
  if (str(p, 'resources')) throw new TsrunError('update: --resources is runc\'s, for the runtime\'s own containers; use docker\'s flags (--memory, --cpus...)');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { parseBytes } = require('../../engine/volumes') as typeof import('../../engine/volumes');
  const bytes = (name: string): number | undefined => {
    const v = str(p, name);
    if (v === undefined) return undefined;
    if (v === '-1') return -1;
    const n = parseBytes(v);
    if (n === undefined) throw new TsrunError(`invalid argument "${v}" for "--${name}" flag: invalid size: '${v}'`);
    return n;
  };
  const int = (name: string): number | undefined => {
    const v = str(p, name);
    if (v === undefined) return undefined;
    if (!/^-?\d+$/.test(v)) throw new TsrunError(`invalid argument "${v}" for "--${name}" flag: strconv.ParseInt: parsing "${v}": invalid syntax`);
    return Number(v);
  };
  const r: Resources = {};
  const mem = bytes('memory'), swap = bytes('memory-swap'), resv = bytes('memory-reservation');
  if (mem !== undefined && mem > 0 && mem < 6 * 1024 * 1024) throw new TsrunError('Minimum memory limit allowed is 6MB');
  if (mem !== undefined || swap !== undefined || resv !== undefined) r.memory = { ...(mem !== undefined && { limit: mem }), ...(swap !== undefined && { swap }), ...(resv !== undefined && { reservation: resv }) };
  const pids = int('pids-limit');
  if (pids !== undefined) r.pids = { limit: pids };
  let quota = int('cpu-quota'), period = int('cpu-period');
  const cpus = str(p, 'cpus');
  if (cpus !== undefined) {
    const n = Number(cpus);
    if (!(n >= 0)) throw new TsrunError(`invalid argument "${cpus}" for "--cpus" flag: failed to parse ${cpus} as a rational number`);
    if (quota !== undefined || period !== undefined) throw new TsrunError('Conflicting options: CPU Quota or CPU Period cannot be set with --cpus');
    period = 100000; quota = n > 0 ? Math.round(n * 100000) : -1;
  }
  const shares = int('cpu-shares');
  const set = str(p, 'cpuset-cpus'), mems = str(p, 'cpuset-mems');
  if (shares !== undefined || quota !== undefined || period !== undefined || set !== undefined || mems !== undefined) {
    r.cpu = { ...(shares !== undefined && { shares }), ...(quota !== undefined && { quota }), ...(period !== undefined && { period }), ...(set !== undefined && { cpus: set }), ...(mems !== undefined && { mems }) };
  }
  const bw = int('blkio-weight');
  if (bw !== undefined) r.blockIO = { weight: bw };
  const restart = str(p, 'restart');
  if (restart !== undefined && !/^(no|always|unless-stopped|on-failure(:\d+)?)$/.test(restart)) throw new TsrunError(`invalid restart policy '${restart}': use no, always, unless-stopped or on-failure[:N]`);
  if (!Object.keys(r).length && restart === undefined) throw new TsrunError('You must provide one or more flags when using this command.');
  let code = 0;
  for (const key of p.args) {
    try {
      const c = findContainer(g.root, key);
      if (restart !== undefined && c.autoRemove && restart !== 'no') throw new TsrunError('Restart policy cannot be updated because AutoRemove is enabled for the container');
      const dir = containerPath(g.root, c.id);
      if (Object.keys(r).length) {
        if (containerState(g.root, c).status === 'running' || containerState(g.root, c).status === 'paused') {
          // eslint-disable-next-line @typescript-eslint/no-require-imports
          const state = require('../../runtime/state') as typeof import('../../runtime/state');
          // eslint-disable-next-line @typescript-eslint/no-require-imports
          const { loadCgroupManager } = require('../../runtime/cgroups') as typeof import('../../runtime/cgroups');
          const rec = state.loadRecord(g.root, c.id);
          loadCgroupManager(rec.cgroup).apply(r);
          const l = (rec.config.linux ??= {});
          l.resources = merge(l.resources, r);
          state.saveRecord(g.root, rec);
        }
        const file = path.join(dir, 'config.json');
        const spec = JSON.parse(fs.readFileSync(file, 'utf8')) as Spec;
        const l = (spec.linux ??= {});
        l.resources = merge(l.resources, r);
        fs.writeFileSync(file + '.tmp', JSON.stringify(spec, null, 2));
        fs.renameSync(file + '.tmp', file);
      }
      if (restart !== undefined) {
        saveContainer(g.root, { ...findContainer(g.root, c.id), restart });
        fs.writeFileSync(path.join(dir, '.restart-policy.tmp'), restart + '\n');
        fs.renameSync(path.join(dir, '.restart-policy.tmp'), path.join(dir, 'restart-policy'));
      }
      process.stdout.write(key + '\n');
    } catch (e) {
      process.stderr.write(`Error response from daemon: Cannot update container ${key}: ${(e as Error).message}\n`);
      code = 1;
    }
  }
  return code;
}

function merge(a: Resources | undefined, b: Resources): Resources {
  return { ...(a ?? {}), ...b, ...(b.memory ? { memory: { ...(a?.memory ?? {}), ...b.memory } } : {}), ...(b.cpu ? { cpu: { ...(a?.cpu ?? {}), ...b.cpu } } : {}) };
}
