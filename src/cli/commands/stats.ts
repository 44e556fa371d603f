import { parse, str, type Globals } from '../args';
import { listContainers, findContainer, type ContainerRecord } from '../../engine/containers';
import { containerState, sleep } from '../../engine/lifecycle';
import { loadRecord } from '../../runtime/state';
import { loadCgroupManager } from '../../runtime/cgroups';
import type { CgroupStats } from '../../runtime/cgroups/stats';
import { table, humanSize } from '../format';
import { renderTemplate } from './inspect';
import os = require('os');
import fs = require('fs');

function binSize(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${Number(n.toFixed(2))}${u[i]}`;
}

interface Sample { cpu: number; t: bigint; mem: number; limit: number; pids: number; read: number; write: number; rx: number; tx: number }

/** Bytes received and sent by the container's interfaces but lo (/proc/PID/net/dev shows PID's network namespace). */
function netIO(pid: number): { rx: number; tx: number } {
  let rx = 0, tx = 0;
  try {
    for (const line of fs.readFileSync(`/proc/${pid}/net/dev`, 'utf8').split('\n').slice(2)) {
      const m = /^\s*([^:]+):\s*(.*)$/.exec(line);
      if (!m || m[1] === 'lo') continue;
      const f = m[2].trim().split(/\s+/).map(Number);
      rx += f[0] || 0;
      tx += f[8] || 0;
    }
  } catch { /* gone */ }
  return { rx, tx };
}

function sample(g: Globals, c: ContainerRecord): Sample | undefined {
  try {
    const rec = loadRecord(g.root, c.id);
    const s = loadCgroupManager(rec.cgroup).stats() as CgroupStats & { cpu?: { usage?: { total?: number } } };
    const limit = s.memory?.usage?.limit && s.memory.usage.limit < 2 ** 62 ? s.memory.usage.limit : os.totalmem();
    let read = 0, write = 0;
    for (const e of s.blkio?.ioServiceBytesRecursive ?? []) {
      if (/^read$/i.test(e.op ?? '')) read += e.value ?? 0;
      else if (/^write$/i.test(e.op ?? '')) write += e.value ?? 0;
    }
    return { cpu: s.cpu?.usage?.total ?? 0, t: process.hrtime.bigint(), mem: s.memory?.usage?.usage ?? 0, limit, pids: s.pids?.current ?? 0, read, write, ...netIO(rec.pid) };
  } catch {
    return undefined;
  }
}

/** docker's stats fields (--format {{.Name}} ...) and its table headers. */
const HEADERS: Record<string, string> = {
  Container: 'CONTAINER', ID: 'CONTAINER ID', Name: 'NAME', CPUPerc: 'CPU %', MemUsage: 'MEM USAGE / LIMIT', MemPerc: 'MEM %',
  NetIO: 'NET I/O', BlockIO: 'BLOCK I/O', PIDs: 'PIDS',
};
const DEFAULT_FORMAT = 'table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}';

type Row = Record<keyof typeof HEADERS, string>;

function rowOf(c: ContainerRecord, key: string, a: Sample | undefined, b: Sample | undefined, noTrunc: boolean): Row {
  const dt = a && b ? Number(b.t - a.t) : 0;
  const cpu = a && b && dt > 0 ? ((b.cpu - a.cpu) / dt) * 100 : 0;
  return {
    Container: key, ID: noTrunc ? c.id : c.id.slice(0, 12), Name: c.name,
    CPUPerc: b ? `${cpu.toFixed(2)}%` : '--',
    MemUsage: b ? `${binSize(b.mem)} / ${binSize(b.limit)}` : '-- / --',
    MemPerc: b ? `${((b.mem / b.limit) * 100).toFixed(2)}%` : '--',
    NetIO: b ? `${humanSize(b.rx)} / ${humanSize(b.tx)}` : '--',
    BlockIO: b ? `${humanSize(b.read)} / ${humanSize(b.write)}` : '--',
    PIDs: b ? String(b.pids) : '--',
  };
}

/** The rows as docker prints them: a table (format "table ..."), one template line each, or JSON. */
function render(rows: Row[], format: string): string {
  if (format === 'json' || /^\{\{\s*json\s+\.\s*\}\}$/.test(format)) return rows.map((r) => JSON.stringify(r) + '\n').join('');
  const tpl = format.replace(/\\t/g, '\t');
  if (!/^table(\s|$)/.test(tpl)) return rows.map((r) => renderTemplate(tpl, r) + '\n').join('');
  const body = tpl.replace(/^table\s*/, '') || DEFAULT_FORMAT.slice(6);
  const head = body.replace(/\{\{\s*\.(\w+)\s*\}\}/g, (_m, k: string) => HEADERS[k] ?? k.toUpperCase());
  return table([head, ...rows.map((r) => renderTemplate(body, r))].map((l) => l.split('\t')));
}

/** docker stats [-a] [--no-stream] [--no-trunc] [--format F] [CONTAINER...]: CPU %, memory, block I/O, PIDS from the cgroups. */
export default async function (argv: string[], g: Globals): Promise<number> {
  const p = parse(argv, { bool: ['no-stream', 'all', 'no-trunc'], str: ['format'], alias: { a: 'all' } }, 'stats');
  const noTrunc = !!p.flags['no-trunc'];
  const format = str(p, 'format') ?? DEFAULT_FORMAT;
  const named = p.args.map((k) => ({ key: k, c: findContainer(g.root, k) }));
  // without names: the running containers (all with -a), looked up again at every refresh
  const pick = () => named.length ? named : listContainers(g.root)
    .sort((a, b) => (a.created < b.created ? -1 : 1))
    .filter((c) => p.flags.all || containerState(g.root, c).status === 'running').map((c) => ({ key: c.id.slice(0, 12), c }));
  let prev = new Map<string, Sample | undefined>();
  const take = (list: ReturnType<typeof pick>) => new Map(list.map(({ c }) => [c.id, sample(g, c)]));
  let list = pick();
  prev = take(list);
  await sleep(p.flags['no-stream'] ? 500 : 1000);
  const tty = !!process.stdout.isTTY;
  let stop = false;
  if (!p.flags['no-stream']) {
    const onSig = () => { stop = true; };
    process.on('SIGINT', onSig);
    process.on('SIGTERM', onSig);
  }
  for (;;) {
    const now = take(list);
    const out = render(list.map(({ key, c }) => rowOf(c, key, prev.get(c.id), now.get(c.id), noTrunc)), format);
    if (p.flags['no-stream']) { process.stdout.write(out); return 0; }
    process.stdout.write(tty ? `\x1b[2J\x1b[H${out}` : out);
    prev = now;
    for (let i = 0; i < 10 && !stop; i++) await sleep(100);
    if (stop) return 0;
    const next = pick();
    for (const { c } of next) if (!prev.has(c.id)) prev.set(c.id, sample(g, c));
    list = next;
  }
}
