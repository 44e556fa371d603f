// Cgroup manager: cgroup v2 first, cgroup v1 (legacy and systemd "hybrid" layouts) supported.
// The layout is detected at run time from /proc/self/mountinfo (see detect.ts).
//
// cgroupsPath handling (OCI `linux.cgroupsPath`):
//   - empty / undefined          -> /tsrun/<id>
//   - absolute "/a/b"            -> <hierarchy root>/a/b  (each v1 controller mount, the v2 mount)
//   - relative "a/b"             -> /tsrun/a/b  (runc would treat it as relative to its own
//                                   cgroup; tsrun chooses a fixed, predictable place instead)
//   - "slice:prefix:name"        -> rejected (systemd driver not supported)
//   - any ".." component         -> rejected
//
// Modes:
//   unified: one dir under the cgroup2 mount; controllers enabled in ancestors' subtree_control.
//   hybrid : v1 controller dirs for all limits + a dir in the controller-less cgroup2 at
//            /sys/fs/cgroup/unified (for cgroup.kill, cgroup.events and clone3 CLONE_INTO_CGROUP).
//   legacy : v1 controller dirs only.
//
// Device cgroup rules are applied on v1 only; cgroup v2 device filtering needs an eBPF program
// (BPF_PROG_TYPE_CGROUP_DEVICE) and is not implemented (r.devices is ignored on v2).

import fs = require('fs');
import path = require('path');
import type { Resources, DeviceCgroup } from '../spec';
import { CGROUP_ROOT, CgroupMode, CgroupMounts, readCgroupMounts } from './detect';
import { applyV1, applyV2 } from './limits';
import { CgroupStats, statsV1, statsV2 } from './stats';
import { CgroupError, errCode, exists, mkdirOne, parseKeyValues, readFile, sleepMs, sysError, tryRead, writeFile } from './util';

export { detectCgroupMode, readCgroupMounts, v1ControllerMounts, parseCgroupMounts } from './detect';
export type { CgroupMode, CgroupMounts } from './detect';
export type { CgroupStats } from './stats';
export { CgroupError } from './util';
export { sharesToWeight, blkioWeightToIoWeight, deviceRule } from './limits';

export interface CgroupPaths {
  mode: 'unified' | 'hybrid' | 'legacy';
  /** cgroup v2 dir: the real one in unified mode, the controller-less one in hybrid mode. */
  unified?: string;
  /** v1 controller -> dir (co-mounted controllers share a dir). Empty in unified mode. */
  v1: Record<string, string>;
  /**
   * Intermediate dirs that create() had to mkdir (besides the leaf), so destroy() - possibly in
   * another process, after loadCgroupManager() - can remove them again when empty.
   * Serialize `paths` after create() to keep this.
   */
  created?: string[];
}

export interface CgroupManager {
  readonly paths: CgroupPaths;
  create(): void;
  unifiedDir(): string | undefined;
  join(pid: number, opts?: { skipUnified?: boolean }): void;
  apply(r: Resources | undefined): void;
  freeze(): void;
  thaw(): void;
  isFrozen(): boolean;
  pids(): number[];
  killAll(signal: number): void;
  oomKillCount(): number;
  stats(): CgroupStats;
  destroy(): void;
}

/** v1 hierarchies tsrun creates a dir in (when mounted). hugetlb is used for hugepageLimits. */
const V1_CONTROLLERS = ['cpu', 'cpuacct', 'cpuset', 'memory', 'pids', 'blkio', 'devices', 'freezer', 'hugetlb'];
/** v2 controllers enabled in every ancestor's cgroup.subtree_control when the parent offers them. */
const V2_CONTROLLERS = ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids', 'rdma', 'misc'];

const SIGKILL = 9;
const FREEZE_TIMEOUT_MS = 5000;
const DESTROY_TIMEOUT_MS = 2000;

/**
 * Resolve an OCI cgroupsPath to a path relative to each hierarchy root ("/tsrun/<id>" by default).
 */
export function resolveCgroupsPath(cgroupsPath: string | undefined, id: string): string {
  if (cgroupsPath === undefined || cgroupsPath === '') {
    if (!id || id.includes('/') || id === '.' || id === '..' || id.includes('\0') || id.includes('\n')) {
      throw new Error(`invalid container id "${id}" for a cgroup name`);
    }
    return `/tsrun/${id}`;
  }
  if (!cgroupsPath.startsWith('/') && cgroupsPath.split(':').length === 3) {
    throw new Error(`cgroupsPath "${cgroupsPath}": systemd cgroup paths need --systemd-cgroup, which tsrun does not support yet`);
  }
  if (cgroupsPath.includes('\0') || cgroupsPath.includes('\n')) {
    throw new Error(`cgroupsPath ${JSON.stringify(cgroupsPath)}: invalid character`);
  }
  const parts = cgroupsPath.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) {
    throw new Error(`cgroupsPath "${cgroupsPath}": ".." is not allowed in a cgroup path`);
  }
  if (!cgroupsPath.startsWith('/')) parts.unshift('tsrun');
  if (parts.length === 0) {
    throw new Error(`cgroupsPath "${cgroupsPath}": refers to the cgroup root, which tsrun will not use`);
  }
  return '/' + parts.join('/');
}

/** Compute the dirs for a relative cgroup path on a given layout (exported for tests). */
export function cgroupPathsFor(mounts: CgroupMounts, rel: string): CgroupPaths {
  const paths: CgroupPaths = { mode: mounts.mode, v1: {} };
  if (mounts.unified) paths.unified = mounts.unified + rel;
  if (mounts.mode !== 'unified') {
    for (const c of V1_CONTROLLERS) if (mounts.v1[c]) paths.v1[c] = mounts.v1[c] + rel;
  }
  return paths;
}

export function cgroupManager(cgroupsPath: string | undefined, id: string): CgroupManager {
  const rel = resolveCgroupsPath(cgroupsPath, id);
  const mounts = readCgroupMounts();
  if (mounts.mode === 'legacy' && Object.keys(mounts.v1).length === 0) {
    throw new Error('no cgroup hierarchy is mounted (neither cgroup2 nor any cgroup v1 controller)');
  }
  return new Manager(cgroupPathsFor(mounts, rel), mounts);
}

export function loadCgroupManager(paths: CgroupPaths): CgroupManager {
  const check = (p: string) => {
    if (!path.isAbsolute(p) || p.split('/').includes('..')) throw new Error(`invalid cgroup dir "${p}" in state`);
  };
  if (paths.unified) check(paths.unified);
  for (const d of Object.values(paths.v1 ?? {})) check(d);
  for (const d of paths.created ?? []) check(d);
  return new Manager(
    { mode: paths.mode, unified: paths.unified, v1: { ...(paths.v1 ?? {}) }, created: paths.created ? [...paths.created] : undefined },
    undefined,
  );
}

/** Default device rules runc adds to every container (for callers that want runc's policy on v1). */
export const defaultAllowedDevices: DeviceCgroup[] = [
  { allow: true, type: 'c', access: 'm' },            // mknod any char device
  { allow: true, type: 'b', access: 'm' },            // mknod any block device
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },   // /dev/null
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' },   // /dev/random
  { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' },   // /dev/full
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' },   // /dev/tty
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },   // /dev/zero
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' },   // /dev/urandom
  { allow: true, type: 'c', major: 136, access: 'rwm' },           // /dev/pts/*
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' },   // /dev/ptmx
  { allow: true, type: 'c', major: 10, minor: 200, access: 'rwm' }, // /dev/net/tun
];

function uniq<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

class Manager implements CgroupManager {
  readonly paths: CgroupPaths;
  private mountsCache: CgroupMounts | undefined;

  constructor(paths: CgroupPaths, mounts: CgroupMounts | undefined) {
    this.paths = paths;
    this.mountsCache = mounts;
  }

  private mounts(): CgroupMounts {
    this.mountsCache ??= readCgroupMounts();
    return this.mountsCache;
  }

  /** Hierarchy root (mount point) containing `dir`. */
  private rootOf(dir: string): string {
    const m = this.mounts();
    const points = [m.unified, ...Object.values(m.v1), ...Object.values(m.named)].filter((p): p is string => !!p);
    let best: string | undefined;
    for (const p of points) {
      if (dir.startsWith(p + '/') && (!best || p.length > best.length)) best = p;
    }
    if (best) return best;
    // Not mounted where the state says (should not happen): assume /sys/fs/cgroup/<one level>.
    if (dir.startsWith(CGROUP_ROOT + '/')) {
      if (this.paths.mode === 'unified') return CGROUP_ROOT;
      return CGROUP_ROOT + '/' + dir.slice(CGROUP_ROOT.length + 1).split('/')[0];
    }
    throw new Error(`cannot find the cgroup hierarchy containing ${dir}`);
  }

  private v1Dirs(): string[] {
    return uniq(Object.values(this.paths.v1));
  }

  private allDirs(): string[] {
    const dirs = this.v1Dirs();
    if (this.paths.unified) dirs.push(this.paths.unified);
    return uniq(dirs);
  }

  private noteCreated(dir: string): void {
    this.paths.created ??= [];
    if (!this.paths.created.includes(dir)) this.paths.created.push(dir);
  }

  // ------------------------------------------------------------------------------------------
  create(): void {
    if (this.paths.unified) this.mkdirTree(this.paths.unified, { enableControllers: this.paths.mode === 'unified' });
    const cpusetDir = this.paths.v1.cpuset;
    for (const dir of this.v1Dirs()) this.mkdirTree(dir, { cpuset: dir === cpusetDir });
  }

  private mkdirTree(dir: string, opts: { enableControllers?: boolean; cpuset?: boolean }): void {
    const root = this.rootOf(dir);
    const parts = dir.slice(root.length + 1).split('/').filter(Boolean);
    // Retry when a concurrent destroy() removes a shared parent ("tsrun") before our leaf exists
    // (once it does, the parent cannot be removed): a mkdir under it fails with ENOENT, and a write
    // into it (copyCpuset) with ENODEV, which is what a file of a removed cgroup answers.
    for (let attempt = 0; ; attempt++) {
      try {
        let cur = root;
        for (const part of parts) {
          const parent = cur;
          cur = path.join(cur, part);
          if (opts.enableControllers) enableControllers(parent);
          const made = mkdirOne(cur);
          if (made && cur !== dir) this.noteCreated(cur);
          if (opts.cpuset && (made || cur === dir)) copyCpuset(parent, cur);
        }
        return;
      } catch (err) {
        const code = errCode(err);
        if ((code === 'ENOENT' || code === 'ENODEV') && attempt < 5) continue;
        throw err;
      }
    }
  }

  unifiedDir(): string | undefined {
    return this.paths.unified;
  }

  join(pid: number, opts?: { skipUnified?: boolean }): void {
    if (!Number.isInteger(pid) || pid <= 0) throw new Error(`join: invalid pid ${pid}`);
    for (const dir of this.v1Dirs()) writeFile(path.join(dir, 'cgroup.procs'), String(pid));
    if (this.paths.unified && !opts?.skipUnified) writeFile(path.join(this.paths.unified, 'cgroup.procs'), String(pid));
  }

  apply(r: Resources | undefined): void {
    if (!r) return;
    if (this.paths.mode === 'unified') {
      if (!this.paths.unified) throw new Error('cgroup v2 dir missing from cgroup paths');
      applyV2(this.paths.unified, r);
    } else {
      applyV1(this.paths.v1, r);
    }
  }

  // ------------------------------------------------------------------------------------------
  // freezer: v1 freezer.state in legacy/hybrid mode, cgroup.freeze in unified mode (or in hybrid
  // when no v1 freezer is mounted).

  private freezerKind(): { kind: 'v1'; dir: string } | { kind: 'v2'; dir: string } | undefined {
    if (this.paths.mode !== 'unified' && this.paths.v1.freezer) return { kind: 'v1', dir: this.paths.v1.freezer };
    if (this.paths.unified && (this.paths.mode === 'unified' || exists(path.join(this.paths.unified, 'cgroup.freeze')))) {
      return { kind: 'v2', dir: this.paths.unified };
    }
    return undefined;
  }

  freeze(): void {
    const fz = this.freezerKind();
    if (!fz) throw new Error('freeze: no cgroup freezer is available (v1 freezer not mounted, no cgroup v2)');
    if (fz.kind === 'v2') {
      writeFile(path.join(fz.dir, 'cgroup.freeze'), '1');
      try {
        waitFrozenV2(fz.dir, true);
      } catch (err) {
        try { writeFile(path.join(fz.dir, 'cgroup.freeze'), '0'); } catch { /* ignore */ }
        throw err;
      }
      return;
    }
    const state = path.join(fz.dir, 'freezer.state');
    // Like runc: keep asking for FROZEN; occasionally thaw briefly so a freeze racing with
    // forks/exits can make progress.
    for (let i = 0; i < 1000; i++) {
      if (i % 50 === 49) {
        writeFile(state, 'THAWED');
        sleepMs(10);
      }
      writeFile(state, 'FROZEN');
      if (i % 25 === 24) sleepMs(10);
      else if (i > 0) sleepMs(1);
      const s = readFile(state).trim();
      if (s === 'FROZEN') return;
    }
    try { writeFile(state, 'THAWED'); } catch { /* ignore */ }
    throw new Error(`freeze ${state}: timed out waiting for FROZEN`);
  }

  thaw(): void {
    const fz = this.freezerKind();
    if (!fz) throw new Error('thaw: no cgroup freezer is available (v1 freezer not mounted, no cgroup v2)');
    if (fz.kind === 'v2') {
      writeFile(path.join(fz.dir, 'cgroup.freeze'), '0');
      waitFrozenV2(fz.dir, false);
      return;
    }
    const state = path.join(fz.dir, 'freezer.state');
    const deadline = Date.now() + FREEZE_TIMEOUT_MS;
    for (;;) {
      writeFile(state, 'THAWED');
      if (readFile(state).trim() === 'THAWED') return;
      if (Date.now() > deadline) throw new Error(`thaw ${state}: timed out waiting for THAWED`);
      sleepMs(1);
    }
  }

  isFrozen(): boolean {
    const fz = this.freezerKind();
    if (!fz) return false;
    if (fz.kind === 'v2') return parseKeyValues(tryRead(path.join(fz.dir, 'cgroup.events')))?.frozen === 1;
    return tryRead(path.join(fz.dir, 'freezer.state'))?.trim() === 'FROZEN';
  }

  // ------------------------------------------------------------------------------------------
  pids(): number[] {
    const set = new Set<number>();
    for (const dir of this.allDirs()) collectProcs(dir, set);
    return [...set].sort((a, b) => a - b);
  }

  killAll(signal: number): void {
    const unified = this.paths.unified;
    if (signal === SIGKILL && unified && exists(path.join(unified, 'cgroup.kill'))) {
      try {
        writeFile(path.join(unified, 'cgroup.kill'), '1');
      } catch (err) {
        if (errCode(err) !== 'ENOENT') throw err;
      }
      if (this.paths.mode === 'unified') return;
      // hybrid: also catch anything that is in the v1 dirs but not in the v2 one.
      this.signalEach(SIGKILL, this.v1Pids());
      return;
    }
    const fz = signal === SIGKILL ? this.freezerKind() : undefined;
    if (fz) {
      // Freeze so nothing can fork while we signal; SIGKILL is delivered on thaw.
      let frozen = false;
      try { this.freeze(); frozen = true; } catch { /* best effort */ }
      try {
        this.signalEach(signal, this.pids());
      } finally {
        if (frozen) {
          try { this.thaw(); } catch { /* best effort */ }
        }
      }
      return;
    }
    this.signalEach(signal, this.pids());
  }

  private v1Pids(): number[] {
    const set = new Set<number>();
    for (const dir of this.v1Dirs()) collectProcs(dir, set);
    return [...set];
  }

  private signalEach(signal: number, pids: number[]): void {
    for (const pid of pids) {
      if (pid <= 1 || pid === process.pid) continue; // never signal init or ourselves
      try {
        process.kill(pid, signal);
      } catch (err) {
        if (errCode(err) === 'ESRCH') continue;
        throw sysError('kill', String(pid), err);
      }
    }
  }

  oomKillCount(): number {
    if (this.paths.mode !== 'unified' && this.paths.v1.memory) {
      const kv = parseKeyValues(tryRead(path.join(this.paths.v1.memory, 'memory.oom_control')));
      if (kv?.oom_kill !== undefined) return kv.oom_kill;
    }
    if (this.paths.unified) {
      const kv = parseKeyValues(tryRead(path.join(this.paths.unified, 'memory.events')));
      if (kv?.oom_kill !== undefined) return kv.oom_kill;
    }
    return 0;
  }

  stats(): CgroupStats {
    if (this.paths.mode === 'unified') return this.paths.unified ? statsV2(this.paths.unified) : {};
    return statsV1(this.paths.v1);
  }

  // ------------------------------------------------------------------------------------------
  destroy(): void {
    const leaves = this.allDirs();
    const deadline = Date.now() + DESTROY_TIMEOUT_MS;
    let pending = leaves;
    for (;;) {
      const busy: string[] = [];
      let lastErr: unknown;
      for (const dir of pending) {
        try {
          removeTree(dir);
        } catch (err) {
          const code = errCode(err);
          if (code === 'EBUSY' || code === 'ENOTEMPTY' || code === 'EAGAIN') {
            busy.push(dir);
            lastErr = err;
          } else throw err;
        }
      }
      if (busy.length === 0) break;
      if (Date.now() > deadline) throw lastErr;
      // Something still lives in there: make sure it can die, kill it, try again.
      try { if (this.isFrozen()) this.thaw(); } catch { /* best effort */ }
      try { this.killAll(SIGKILL); } catch { /* best effort */ }
      sleepMs(10);
      pending = busy;
    }

    // Remove now-empty parents that tsrun created: ones recorded by create(), and "tsrun" levels.
    // rmdir(2) on a cgroup with children or processes fails, so a shared parent is never removed.
    const created = new Set(this.paths.created ?? []);
    for (const leaf of leaves) {
      let root: string;
      try { root = this.rootOf(leaf); } catch { continue; }
      for (let p = path.dirname(leaf); p.length > root.length && p.startsWith(root + '/'); p = path.dirname(p)) {
        if (!(created.has(p) || path.basename(p) === 'tsrun')) break;
        try {
          fs.rmdirSync(p);
        } catch (err) {
          if (errCode(err) !== 'ENOENT') break;
        }
      }
    }
    if (this.paths.created) this.paths.created = [];
  }
}

// ---------------------------------------------------------------------------------------------

function enableControllers(parent: string): void {
  const available = tryRead(path.join(parent, 'cgroup.controllers'));
  if (available === undefined) return;
  const avail = new Set(available.trim().split(/\s+/).filter(Boolean));
  const enabled = new Set((tryRead(path.join(parent, 'cgroup.subtree_control')) ?? '').trim().split(/\s+/).filter(Boolean));
  const want = V2_CONTROLLERS.filter((c) => avail.has(c) && !enabled.has(c));
  if (want.length === 0) return;
  const file = path.join(parent, 'cgroup.subtree_control');
  try {
    writeFile(file, want.map((c) => '+' + c).join(' '));
  } catch {
    // One controller may refuse (e.g. cpu with realtime tasks, or a parent with processes in
    // it): enable the others one by one and let apply() report what is really missing.
    for (const c of want) {
      try { writeFile(file, '+' + c); } catch { /* ignore */ }
    }
  }
}

/** New v1 cpuset cgroups start with empty cpus/mems, and then refuse tasks: inherit the parent's. */
/** Give a new v1 cpuset cgroup its parent's cpus and mems (it starts empty, and an empty cpuset
 * refuses tasks with ENOSPC).  A parent that is itself still empty - another tsrun created it a
 * moment ago and has not filled it yet - is filled from its own parent first. */
function copyCpuset(parent: string, dir: string, depth = 0): void {
  for (const f of ['cpuset.cpus', 'cpuset.mems']) {
    const own = tryRead(path.join(dir, f));
    if (own === undefined || own.trim() !== '') continue;
    let fromParent = readFile(path.join(parent, f)).trim();
    if (fromParent === '' && depth < 16 && path.dirname(parent) !== parent) {
      copyCpuset(path.dirname(parent), parent, depth + 1);
      fromParent = readFile(path.join(parent, f)).trim();
    }
    if (fromParent !== '') writeFile(path.join(dir, f), fromParent);
  }
}

function waitFrozenV2(dir: string, frozen: boolean): void {
  const events = path.join(dir, 'cgroup.events');
  const want = frozen ? 1 : 0;
  const deadline = Date.now() + FREEZE_TIMEOUT_MS;
  for (let i = 0; ; i++) {
    const kv = parseKeyValues(readFile(events));
    if (kv?.frozen === want || kv?.frozen === undefined) return;
    if (Date.now() > deadline) {
      throw new CgroupError(frozen ? 'freeze' : 'thaw', dir, 'ETIMEDOUT',
        `timed out waiting for "frozen ${want}" in cgroup.events`);
    }
    sleepMs(i < 10 ? 1 : 10);
  }
}

function collectProcs(dir: string, out: Set<number>): void {
  const text = tryRead(path.join(dir, 'cgroup.procs'));
  if (text === undefined) return;
  for (const l of text.split('\n')) {
    const n = Number(l.trim());
    if (l.trim() && Number.isInteger(n) && n > 0) out.add(n);
  }
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) if (e.isDirectory()) collectProcs(path.join(dir, e.name), out);
}

/** rmdir a cgroup and any child cgroups (created by the container itself), deepest first. */
function removeTree(dir: string): void {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    if (errCode(err) === 'ENOENT') return;
    throw sysError('readdir', dir, err);
  }
  for (const e of entries) if (e.isDirectory()) removeTree(path.join(dir, e.name));
  try {
    fs.rmdirSync(dir);
  } catch (err) {
    if (errCode(err) === 'ENOENT') return;
    throw sysError('rmdir', dir, err);
  }
}
