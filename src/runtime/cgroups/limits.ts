// Writing OCI `linux.resources` into cgroup v1 / v2 control files.
//
// Conventions shared by both versions (same as runc): a numeric limit of 0 / undefined means
// "not set" and is not written; -1 means unlimited. apply() may be called again on a running
// container (`tsrun update`), so every write is a plain overwrite of an existing file.

import path = require('path');
import type { Resources, DeviceCgroup, ThrottleDevice } from '../spec';
import { errCode, exists, intStr, readUint, writeFile } from './util';

const set = (n: number | undefined | null): n is number => n !== undefined && n !== null && n !== 0;

// ---------------------------------------------------------------------------------------------
// cgroup v1

export function applyV1(v1: Record<string, string>, r: Resources): void {
  const dirFor = (ctrl: string, what: string): string => {
    const d = v1[ctrl];
    if (!d) throw new Error(`${what} is set but the ${ctrl} cgroup v1 controller is not mounted`);
    return d;
  };
  const w = (dir: string, file: string, value: string) => writeFile(path.join(dir, file), value);

  // --- memory
  const m = r.memory;
  if (m) {
    const wantsMem = set(m.limit) || set(m.swap) || set(m.reservation) || set(m.kernelTCP) ||
      (m.swappiness !== undefined && m.swappiness !== null && m.swappiness !== -1) || m.disableOOMKiller === true;
    if (wantsMem) {
      const dir = dirFor('memory', 'linux.resources.memory');
      setMemoryAndSwapV1(dir, m.limit ?? 0, m.swap ?? 0);
      if (set(m.reservation)) w(dir, 'memory.soft_limit_in_bytes', intStr(m.reservation));
      // memory.kernel (kmem.limit_in_bytes) is deprecated and rejected by kernels >= 5.16: ignored, like runc.
      if (set(m.kernelTCP) && exists(path.join(dir, 'memory.kmem.tcp.limit_in_bytes'))) {
        w(dir, 'memory.kmem.tcp.limit_in_bytes', intStr(m.kernelTCP));
      }
      if (m.swappiness !== undefined && m.swappiness !== null && m.swappiness !== -1) {
        if (m.swappiness < 0 || m.swappiness > 100 || !Number.isInteger(m.swappiness)) {
          throw new Error(`invalid memory.swappiness ${m.swappiness}: must be an integer between 0 and 100`);
        }
        w(dir, 'memory.swappiness', String(m.swappiness));
      }
      if (m.disableOOMKiller === true) w(dir, 'memory.oom_control', '1');
    }
  }

  // --- cpu / cpuset
  const c = r.cpu;
  if (c) {
    if (set(c.shares) || set(c.quota) || set(c.period) || c.burst != null || set(c.realtimePeriod) ||
        set(c.realtimeRuntime) || c.idle != null) {
      const dir = dirFor('cpu', 'linux.resources.cpu');
      if (set(c.shares)) w(dir, 'cpu.shares', intStr(c.shares));
      // period first, then quota; if the period is rejected (EINVAL: old quota / new period would
      // exceed the parent's limit) and a quota is being set, retry the period after the quota.
      let periodPending = false;
      if (set(c.period)) {
        try {
          w(dir, 'cpu.cfs_period_us', intStr(c.period));
        } catch (err) {
          if (errCode(err) !== 'EINVAL' || !set(c.quota)) throw err;
          periodPending = true;
        }
      }
      if (set(c.quota)) {
        w(dir, 'cpu.cfs_quota_us', c.quota < 0 ? '-1' : intStr(c.quota));
        if (periodPending) w(dir, 'cpu.cfs_period_us', intStr(c.period!));
      }
      if (c.burst != null) w(dir, 'cpu.cfs_burst_us', intStr(c.burst));
      if (set(c.realtimePeriod)) w(dir, 'cpu.rt_period_us', intStr(c.realtimePeriod));
      if (set(c.realtimeRuntime)) w(dir, 'cpu.rt_runtime_us', intStr(c.realtimeRuntime));
      if (c.idle != null) w(dir, 'cpu.idle', intStr(c.idle));
    }
    if (c.cpus) w(dirFor('cpuset', 'linux.resources.cpu.cpus'), 'cpuset.cpus', c.cpus);
    if (c.mems) w(dirFor('cpuset', 'linux.resources.cpu.mems'), 'cpuset.mems', c.mems);
  }

  // --- pids
  if (r.pids) {
    const dir = dirFor('pids', 'linux.resources.pids');
    w(dir, 'pids.max', r.pids.limit > 0 ? intStr(r.pids.limit) : 'max');
  }

  // --- blkio
  const b = r.blockIO;
  if (b) applyBlkioV1(b, () => dirFor('blkio', 'linux.resources.blockIO'));

  // --- hugetlb
  for (const h of r.hugepageLimits ?? []) {
    const dir = dirFor('hugetlb', 'linux.resources.hugepageLimits');
    w(dir, `hugetlb.${h.pageSize}.limit_in_bytes`, intStr(h.limit));
  }

  // --- devices (deny everything, then replay the rules in order)
  if (r.devices) {
    const dir = dirFor('devices', 'linux.resources.devices');
    w(dir, 'devices.deny', 'a');
    for (const d of r.devices) w(dir, d.allow ? 'devices.allow' : 'devices.deny', deviceRule(d));
  }

  // r.unified is ignored on cgroup v1 (and in hybrid mode, whose v2 tree has no controllers).
}

function setMemoryAndSwapV1(dir: string, limit: number, swap: number): void {
  const limitFile = path.join(dir, 'memory.limit_in_bytes');
  const swapFile = path.join(dir, 'memory.memsw.limit_in_bytes');
  const haveSwapFile = exists(swapFile);
  // "memory: -1" without an explicit swap means "no limit at all": lift memsw too.
  if (limit === -1 && swap === 0 && haveSwapFile) swap = -1;
  if (set(swap) && !haveSwapFile) {
    if (swap === -1 || swap === limit) swap = 0; // nothing to enforce: skip silently
    else {
      throw new Error(`memory.swap is set to ${swap} but swap accounting is disabled on this host ` +
        `(${swapFile} does not exist); boot with swapaccount=1 or leave memory.swap unset`);
    }
  }
  if (set(limit) && set(swap) && swap !== -1 && limit !== -1 && swap < limit) {
    throw new Error(`memory.swap (${swap}) must be greater than or equal to memory.limit (${limit})`);
  }
  const writeLimit = () => { if (set(limit)) writeFile(limitFile, intStr(limit)); };
  const writeSwap = () => { if (set(swap)) writeFile(swapFile, intStr(swap)); };
  // The kernel requires memsw >= memory at all times, so the order depends on the current
  // limit when updating: raise memsw first, or lower memory first.
  if (set(limit) && set(swap)) {
    const cur = readUint(limitFile);
    if (swap === -1 || (cur !== undefined && cur < swap)) {
      writeSwap();
      writeLimit();
      return;
    }
  }
  writeLimit();
  writeSwap();
}

function applyBlkioV1(b: NonNullable<Resources['blockIO']>, dirOf: () => string): void {
  const wantsAny = set(b.weight) || set(b.leafWeight) || (b.weightDevice?.length ?? 0) > 0 ||
    [b.throttleReadBpsDevice, b.throttleWriteBpsDevice, b.throttleReadIOPSDevice, b.throttleWriteIOPSDevice]
      .some((l) => (l?.length ?? 0) > 0);
  if (!wantsAny) return;
  const dir = dirOf();
  const p = (f: string) => path.join(dir, f);
  // CFQ (blkio.weight) is gone from modern kernels; BFQ exposes blkio.bfq.weight instead.
  const bfq = !exists(p('blkio.weight')) && exists(p('blkio.bfq.weight'));
  const weightFile = bfq ? 'blkio.bfq.weight' : 'blkio.weight';
  const weightDevFile = bfq ? 'blkio.bfq.weight_device' : 'blkio.weight_device';
  const hint = (code: string | undefined) =>
    code === 'ENOENT' ? 'no CFQ/BFQ I/O scheduler: block I/O weights are unavailable' : undefined;
  if (set(b.weight)) writeFile(p(weightFile), intStr(b.weight), hint);
  if (set(b.leafWeight) && exists(p('blkio.leaf_weight'))) writeFile(p('blkio.leaf_weight'), intStr(b.leafWeight));
  for (const d of b.weightDevice ?? []) {
    if (set(d.weight)) writeFile(p(weightDevFile), `${d.major}:${d.minor} ${intStr(d.weight)}`, hint);
    if (set(d.leafWeight) && exists(p('blkio.leaf_weight_device'))) {
      writeFile(p('blkio.leaf_weight_device'), `${d.major}:${d.minor} ${intStr(d.leafWeight)}`);
    }
  }
  const thr = (list: ThrottleDevice[] | undefined, file: string) => {
    for (const t of list ?? []) writeFile(p(file), `${t.major}:${t.minor} ${intStr(t.rate)}`);
  };
  thr(b.throttleReadBpsDevice, 'blkio.throttle.read_bps_device');
  thr(b.throttleWriteBpsDevice, 'blkio.throttle.write_bps_device');
  thr(b.throttleReadIOPSDevice, 'blkio.throttle.read_iops_device');
  thr(b.throttleWriteIOPSDevice, 'blkio.throttle.write_iops_device');
}

/** "type major:minor access" for devices.allow / devices.deny. */
export function deviceRule(d: DeviceCgroup): string {
  const num = (n: number | undefined) => (n === undefined || n === null || n < 0 ? '*' : String(n));
  const type = d.type || 'a';
  if (!/^[abc]$/.test(type)) throw new Error(`invalid device cgroup rule type "${type}"`);
  const access = d.access || 'rwm';
  if (!/^[rwm]+$/.test(access)) throw new Error(`invalid device cgroup rule access "${access}"`);
  return `${type} ${num(d.major)}:${num(d.minor)} ${access}`;
}

// ---------------------------------------------------------------------------------------------
// cgroup v2

/** OCI cpu.shares (v1, 2..262144) -> cgroup v2 cpu.weight (1..10000); 0 = unset. */
export function sharesToWeight(shares: number): number {
  if (shares === 0) return 0;
  if (shares <= 2) return 1;
  if (shares >= 262144) return 10000;
  const l = Math.log2(shares);
  const exponent = (l * l + 125 * l) / 612.0 - 7.0 / 34.0;
  return Math.ceil(Math.pow(10, exponent));
}

/** blkio weight (10..1000) -> io.weight (1..10000). */
export function blkioWeightToIoWeight(w: number): number {
  if (w === 0) return 0;
  return 1 + Math.floor(((w - 10) * 9999) / 990);
}

/**
 * OCI memory.swap is memory+swap; v2 memory.swap.max is swap only.
 * Returns -1 for "max", 0 for "not set".
 */
export function swapToV2(swap: number, limit: number): number {
  if (limit === -1 && swap === 0) return -1;
  if (swap === -1 || swap === 0) return swap;
  if (limit === 0 || limit === -1) throw new Error('memory.swap cannot be set without a memory.limit');
  if (swap < limit) throw new Error(`memory.swap (${swap}) must be greater than or equal to memory.limit (${limit})`);
  return swap - limit;
}

export function applyV2(dir: string, r: Resources): void {
  const controllerHint = (ctrl: string) => (code: string | undefined) =>
    code === 'ENOENT' ? `is the ${ctrl} controller enabled in the parent's cgroup.subtree_control?` : undefined;
  const w = (file: string, value: string, ctrl: string) =>
    writeFile(path.join(dir, file), value, controllerHint(ctrl));
  const numToStr = (n: number | undefined | null) => (!set(n) ? '' : n === -1 ? 'max' : intStr(n));

  // --- memory
  const m = r.memory;
  if (m) {
    const limit = m.limit ?? 0;
    const swap = swapToV2(m.swap ?? 0, limit);
    let swapStr = numToStr(swap);
    if (swapStr === '' && swap === 0 && set(m.swap) && m.swap > 0) swapStr = '0'; // swap == limit: no swap
    if (swapStr !== '') {
      try {
        w('memory.swap.max', swapStr, 'memory');
      } catch (err) {
        // Swap accounting unavailable: disabling swap or "unlimited" is then a no-op.
        if (!(errCode(err) === 'ENOENT' && (swapStr === 'max' || swapStr === '0'))) throw err;
      }
    }
    const lim = numToStr(limit);
    if (lim !== '') w('memory.max', lim, 'memory');
    const low = numToStr(m.reservation);
    if (low !== '') w('memory.low', low, 'memory');
    // swappiness, disableOOMKiller, kernel and kernelTCP have no cgroup v2 equivalent: ignored.
  }

  // --- cpu / cpuset
  const c = r.cpu;
  if (c) {
    if (set(c.shares)) {
      const weight = sharesToWeight(c.shares);
      if (weight) w('cpu.weight', String(weight), 'cpu');
    }
    if (set(c.quota) || set(c.period)) {
      let v = set(c.quota) && c.quota > 0 ? intStr(c.quota) : 'max';
      if (set(c.period)) v += ' ' + intStr(c.period);
      w('cpu.max', v, 'cpu');
    }
    if (c.burst != null) w('cpu.max.burst', intStr(c.burst), 'cpu');
    if (c.idle != null) w('cpu.idle', intStr(c.idle), 'cpu');
    if (c.cpus) w('cpuset.cpus', c.cpus, 'cpuset');
    if (c.mems) w('cpuset.mems', c.mems, 'cpuset');
    // realtimeRuntime / realtimePeriod: no cgroup v2 interface; ignored.
  }

  // --- pids
  if (r.pids) w('pids.max', r.pids.limit > 0 ? intStr(r.pids.limit) : 'max', 'pids');

  // --- io
  const b = r.blockIO;
  if (b) {
    const bfq = exists(path.join(dir, 'io.bfq.weight'));
    if (set(b.weight)) {
      if (bfq) w('io.bfq.weight', intStr(b.weight), 'io');
      else w('io.weight', String(blkioWeightToIoWeight(b.weight)), 'io');
    }
    for (const d of b.weightDevice ?? []) {
      if (!set(d.weight)) continue;
      if (bfq) w('io.bfq.weight', `${d.major}:${d.minor} ${intStr(d.weight)}`, 'io');
      else w('io.weight', `${d.major}:${d.minor} ${blkioWeightToIoWeight(d.weight)}`, 'io');
    }
    const perDev = new Map<string, string[]>();
    const add = (list: ThrottleDevice[] | undefined, key: string) => {
      for (const t of list ?? []) {
        const dev = `${t.major}:${t.minor}`;
        if (!perDev.has(dev)) perDev.set(dev, []);
        perDev.get(dev)!.push(`${key}=${t.rate > 0 ? intStr(t.rate) : 'max'}`);
      }
    };
    add(b.throttleReadBpsDevice, 'rbps');
    add(b.throttleWriteBpsDevice, 'wbps');
    add(b.throttleReadIOPSDevice, 'riops');
    add(b.throttleWriteIOPSDevice, 'wiops');
    for (const [dev, kv] of perDev) w('io.max', `${dev} ${kv.join(' ')}`, 'io');
  }

  // --- hugetlb
  for (const h of r.hugepageLimits ?? []) {
    w(`hugetlb.${h.pageSize}.max`, h.limit === -1 ? 'max' : intStr(h.limit), 'hugetlb');
  }

  // --- devices: cgroup v2 device filtering needs an eBPF program (BPF_CGROUP_DEVICE);
  // not implemented, so r.devices is ignored on v2.

  // --- unified: raw key/value writes, applied last so they can override the above.
  for (const [key, value] of Object.entries(r.unified ?? {})) {
    if (!key || key.includes('/') || key === '.' || key === '..') {
      throw new Error(`invalid linux.resources.unified key "${key}"`);
    }
    writeFile(path.join(dir, key), value, controllerHint(key.split('.')[0]));
  }
}
