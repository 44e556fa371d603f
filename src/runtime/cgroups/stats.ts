// Resource usage in the shape of runc's `events --stats` data (types/events.go).
// Best effort: sections whose files are missing are omitted. Byte/time values are JS numbers
// (values above 2^53 lose precision; "max" is reported as 2^64-1 rounded, like runc's MaxUint64).

import fs = require('fs');
import path = require('path');
import { MAX_UINT64, parseKeyValues, readUint, tryRead } from './util';

export interface CpuUsage {
  /** nanoseconds */
  total?: number;
  percpu?: number[];
  percpu_kernel?: number[];
  percpu_user?: number[];
  kernel: number;
  user: number;
}
export interface CpuThrottling { periods?: number; throttledPeriods?: number; throttledTime?: number }
export interface MemoryEntry { limit: number; usage?: number; max?: number; failcnt: number }
export interface BlkioEntry { major?: number; minor?: number; op?: string; value?: number }
export interface HugetlbStats { usage?: number; max?: number; failcnt: number }

export interface CgroupStats {
  cpu?: { usage: CpuUsage; throttling?: CpuThrottling };
  memory?: {
    cache?: number;
    usage?: MemoryEntry;
    swap?: MemoryEntry;
    kernel?: MemoryEntry;
    kernelTCP?: MemoryEntry;
    raw?: Record<string, number>;
  };
  pids?: { current?: number; limit?: number };
  blkio?: { ioServiceBytesRecursive?: BlkioEntry[]; ioServicedRecursive?: BlkioEntry[] };
  hugetlb?: Record<string, HugetlbStats>;
}

const NS_PER_TICK = 1e9 / 100; // USER_HZ is 100 on Linux

function nums(text: string | undefined): number[] | undefined {
  if (text === undefined) return undefined;
  const out = text.trim().split(/\s+/).filter(Boolean).map(Number);
  return out.every(Number.isFinite) ? out : undefined;
}

// ---------------------------------------------------------------------------------------------
// v1

export function statsV1(v1: Record<string, string>): CgroupStats {
  const st: CgroupStats = {};
  const f = (ctrl: string, file: string) => (v1[ctrl] ? path.join(v1[ctrl], file) : '');

  // cpu
  if (v1.cpuacct) {
    const total = readUint(f('cpuacct', 'cpuacct.usage'));
    if (total !== undefined) {
      const usage: CpuUsage = { total, kernel: 0, user: 0 };
      const percpu = nums(tryRead(f('cpuacct', 'cpuacct.usage_percpu')));
      if (percpu) usage.percpu = percpu;
      const pk = nums(tryRead(f('cpuacct', 'cpuacct.usage_percpu_sys')));
      if (pk) usage.percpu_kernel = pk;
      const pu = nums(tryRead(f('cpuacct', 'cpuacct.usage_percpu_user')));
      if (pu) usage.percpu_user = pu;
      const sys = readUint(f('cpuacct', 'cpuacct.usage_sys'));
      const user = readUint(f('cpuacct', 'cpuacct.usage_user'));
      if (sys !== undefined && user !== undefined) {
        usage.kernel = sys;
        usage.user = user;
      } else {
        const kv = parseKeyValues(tryRead(f('cpuacct', 'cpuacct.stat')));
        if (kv) {
          usage.kernel = (kv.system ?? 0) * NS_PER_TICK;
          usage.user = (kv.user ?? 0) * NS_PER_TICK;
        }
      }
      st.cpu = { usage };
    }
  }
  if (v1.cpu) {
    const kv = parseKeyValues(tryRead(f('cpu', 'cpu.stat')));
    if (kv) {
      st.cpu ??= { usage: { kernel: 0, user: 0 } };
      st.cpu.throttling = {
        periods: kv.nr_periods ?? 0,
        throttledPeriods: kv.nr_throttled ?? 0,
        throttledTime: kv.throttled_time ?? 0,
      };
    }
  }

  // memory
  if (v1.memory) {
    const entry = (prefix: string): MemoryEntry | undefined => {
      const usage = readUint(f('memory', `${prefix}usage_in_bytes`));
      if (usage === undefined) return undefined;
      return {
        limit: readUint(f('memory', `${prefix}limit_in_bytes`)) ?? 0,
        usage,
        max: readUint(f('memory', `${prefix}max_usage_in_bytes`)) ?? 0,
        failcnt: readUint(f('memory', `${prefix}failcnt`)) ?? 0,
      };
    };
    const mem: NonNullable<CgroupStats['memory']> = {};
    const usage = entry('memory.');
    if (usage) mem.usage = usage;
    const swap = entry('memory.memsw.');
    if (swap) mem.swap = swap;
    const kernel = entry('memory.kmem.');
    if (kernel) mem.kernel = kernel;
    const tcp = entry('memory.kmem.tcp.');
    if (tcp) mem.kernelTCP = tcp;
    const raw = parseKeyValues(tryRead(f('memory', 'memory.stat')));
    if (raw) {
      mem.raw = raw;
      if (raw.cache !== undefined) mem.cache = raw.cache;
    }
    if (Object.keys(mem).length) st.memory = mem;
  }

  // pids
  if (v1.pids) {
    const p = pidsStats(v1.pids);
    if (p) st.pids = p;
  }

  // blkio: CFQ files, else BFQ, else the throttle (always present) ones.
  if (v1.blkio) {
    const pick = (names: string[]) => {
      for (const n of names) {
        const t = tryRead(f('blkio', n));
        if (t !== undefined && t.trim() !== '') return parseBlkioV1(t);
      }
      for (const n of names) if (tryRead(f('blkio', n)) !== undefined) return [];
      return undefined;
    };
    const bytes = pick(['blkio.io_service_bytes_recursive', 'blkio.bfq.io_service_bytes_recursive',
      'blkio.throttle.io_service_bytes_recursive']);
    const ios = pick(['blkio.io_serviced_recursive', 'blkio.bfq.io_serviced_recursive',
      'blkio.throttle.io_serviced_recursive']);
    if (bytes || ios) {
      st.blkio = {};
      if (bytes) st.blkio.ioServiceBytesRecursive = bytes;
      if (ios) st.blkio.ioServicedRecursive = ios;
    }
  }

  // hugetlb
  if (v1.hugetlb) {
    const h: Record<string, HugetlbStats> = {};
    for (const size of hugetlbSizes(v1.hugetlb, /^hugetlb\.(.+)\.limit_in_bytes$/)) {
      h[size] = {
        usage: readUint(f('hugetlb', `hugetlb.${size}.usage_in_bytes`)) ?? 0,
        max: readUint(f('hugetlb', `hugetlb.${size}.max_usage_in_bytes`)) ?? 0,
        failcnt: readUint(f('hugetlb', `hugetlb.${size}.failcnt`)) ?? 0,
      };
    }
    if (Object.keys(h).length) st.hugetlb = h;
  }
  return st;
}

function parseBlkioV1(text: string): BlkioEntry[] {
  const out: BlkioEntry[] = [];
  for (const line of text.split('\n')) {
    const sp = line.trim().split(/\s+/);
    if (sp.length !== 3) continue; // skips "Total N"
    const [maj, min] = sp[0].split(':').map(Number);
    const value = Number(sp[2]);
    if (!Number.isFinite(maj) || !Number.isFinite(min) || !Number.isFinite(value)) continue;
    out.push({ major: maj, minor: min, op: sp[1], value });
  }
  return out;
}

function hugetlbSizes(dir: string, re: RegExp): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const n of names) {
    const mm = re.exec(n);
    if (mm) out.push(mm[1]);
  }
  return out;
}

function pidsStats(dir: string): CgroupStats['pids'] | undefined {
  const current = readUint(path.join(dir, 'pids.current'));
  if (current === undefined) return undefined;
  let limit = readUint(path.join(dir, 'pids.max')) ?? 0;
  if (limit === MAX_UINT64) limit = 0; // runc reports "no limit" as 0
  return { current, limit };
}

// ---------------------------------------------------------------------------------------------
// v2

export function statsV2(dir: string): CgroupStats {
  const st: CgroupStats = {};
  const f = (file: string) => path.join(dir, file);

  const cpu = parseKeyValues(tryRead(f('cpu.stat')));
  if (cpu) {
    st.cpu = {
      usage: {
        total: (cpu.usage_usec ?? 0) * 1000,
        kernel: (cpu.system_usec ?? 0) * 1000,
        user: (cpu.user_usec ?? 0) * 1000,
      },
    };
    if (cpu.nr_periods !== undefined) {
      st.cpu.throttling = {
        periods: cpu.nr_periods,
        throttledPeriods: cpu.nr_throttled ?? 0,
        throttledTime: (cpu.throttled_usec ?? 0) * 1000,
      };
    }
  }

  const current = readUint(f('memory.current'));
  if (current !== undefined) {
    const events = parseKeyValues(tryRead(f('memory.events'))) ?? {};
    const usage: MemoryEntry = {
      limit: readUint(f('memory.max')) ?? MAX_UINT64,
      usage: current,
      max: readUint(f('memory.peak')) ?? 0,
      failcnt: events.max ?? 0,
    };
    const mem: NonNullable<CgroupStats['memory']> = { usage };
    const swapCur = readUint(f('memory.swap.current'));
    if (swapCur !== undefined) {
      // v1 reports swap as memory+swap; keep that meaning for compatibility (like runc).
      const swapMax = readUint(f('memory.swap.max')) ?? MAX_UINT64;
      const swapEvents = parseKeyValues(tryRead(f('memory.swap.events'))) ?? {};
      mem.swap = {
        limit: swapMax === MAX_UINT64 || usage.limit === MAX_UINT64 ? MAX_UINT64 : swapMax + usage.limit,
        usage: swapCur + current,
        max: readUint(f('memory.swap.peak')) ?? 0,
        failcnt: swapEvents.fail ?? 0,
      };
    }
    const raw = parseKeyValues(tryRead(f('memory.stat')));
    if (raw) {
      mem.raw = raw;
      if (raw.file !== undefined) mem.cache = raw.file;
    }
    st.memory = mem;
  }

  const pids = pidsStats(dir);
  if (pids) st.pids = pids;

  const io = tryRead(f('io.stat'));
  if (io !== undefined) {
    const bytes: BlkioEntry[] = [];
    const ios: BlkioEntry[] = [];
    for (const line of io.split('\n')) {
      const sp = line.trim().split(/\s+/);
      if (sp.length < 2) continue;
      const [major, minor] = sp[0].split(':').map(Number);
      for (const kv of sp.slice(1)) {
        const [k, v] = kv.split('=');
        const value = Number(v);
        if (!Number.isFinite(value)) continue;
        if (k === 'rbytes') bytes.push({ major, minor, op: 'Read', value });
        else if (k === 'wbytes') bytes.push({ major, minor, op: 'Write', value });
        else if (k === 'rios') ios.push({ major, minor, op: 'Read', value });
        else if (k === 'wios') ios.push({ major, minor, op: 'Write', value });
      }
    }
    st.blkio = { ioServiceBytesRecursive: bytes, ioServicedRecursive: ios };
  }

  const h: Record<string, HugetlbStats> = {};
  for (const size of hugetlbSizes(dir, /^hugetlb\.([^.]+)\.current$/)) {
    const ev = parseKeyValues(tryRead(f(`hugetlb.${size}.events`))) ?? {};
    h[size] = { usage: readUint(f(`hugetlb.${size}.current`)) ?? 0, failcnt: ev.max ?? 0 };
  }
  if (Object.keys(h).length) st.hugetlb = h;
  return st;
}
