import { parse, type Globals } from '../args';
import { listContainers, findContainer, type ContainerRecord } from '../../engine/containers';
import { containerState, sleep } from '../../engine/lifecycle';
import { loadRecord } from '../../runtime/state';
import { loadCgroupManager } from '../../runtime/cgroups';
import { table } from '../format';
import os = require('os');

function binSize(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${Number(n.toFixed(2))}${u[i]}`;
}

interface Sample { cpu: number; t: number; mem: number; limit: number; pids: number }

function sample(g: Globals, c: ContainerRecord): Sample | undefined {
  try {
    const s = loadCgroupManager(loadRecord(g.root, c.id).cgroup).stats() as { cpu?: { usage?: { total?: number } }; memory?: { usage?: { usage?: number; limit?: number } }; pids?: { current?: number } };
    const limit = s.memory?.usage?.limit && s.memory.usage.limit < 2 ** 62 ? s.memory.usage.limit : os.totalmem();
    return { cpu: s.cpu?.usage?.total ?? 0, t: process.hrtime.bigint() as unknown as number, mem: s.memory?.usage?.usage ?? 0, limit, pids: s.pids?.current ?? 0 };
  } catch {
    return undefined;
  }
}

/** docker stats --no-stream: CPU %, memory use / limit, PIDS from the cgroups. */
export default async function (argv: string[], g: Globals): Promise<number> {
  const p = parse(argv, { bool: ['no-stream', 'all', 'no-trunc'], str: ['format'], alias: { a: 'all' } }, 'stats');
  const cs = p.args.length ? p.args.map((k) => findContainer(g.root, k)) : listContainers(g.root).filter((c) => containerState(g.root, c).status === 'running');
  const first = new Map(cs.map((c) => [c.id, sample(g, c)]));
  const t0 = process.hrtime.bigint();
  await sleep(500);
  const dt = Number(process.hrtime.bigint() - t0);
  const rows = cs.map((c) => {
    const a = first.get(c.id), b = sample(g, c);
    const cpu = a && b ? ((b.cpu - a.cpu) / dt) * 100 : 0;
    return [c.id.slice(0, 12), c.name, `${cpu.toFixed(2)}%`, b ? `${binSize(b.mem)} / ${binSize(b.limit)}` : '0B / 0B', b ? `${((b.mem / b.limit) * 100).toFixed(2)}%` : '0.00%', '0B / 0B', '0B / 0B', String(b?.pids ?? 0)];
  });
  process.stdout.write(table([['CONTAINER ID', 'NAME', 'CPU %', 'MEM USAGE / LIMIT', 'MEM %', 'NET I/O', 'BLOCK I/O', 'PIDS'], ...rows]));
  return 0;
}
