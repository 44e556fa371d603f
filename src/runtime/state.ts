// The per-container state directory: <root>/<id>/{state.json, exec.fifo}.
// Written atomically (temp file + rename); create is exclusive through mkdir.
import fs = require('fs');
import path = require('path');
import type { Spec, State, Status } from './spec';
import type { CgroupPaths } from './cgroups';
import { TsrunError } from './errors';

export interface ContainerRecord {
  id: string;
  pid: number;
  startTime: string;     // field 22 of /proc/PID/stat: guards against PID reuse
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
  annotations?: Record<string, string>;
  cgroup: CgroupPaths;
  config: Spec;
  ownPidNs: boolean;
}

const ID_RE = /^[\w+.-]+$/;

export function defaultRoot(): string {
  return process.env.TSRUN_ROOT || '/var/lib/tsrun';
}

export function validateId(id: string | undefined): string {
  if (!id) throw new TsrunError('container id cannot be empty');
  if (!ID_RE.test(id) || id === '.' || id === '..') throw new TsrunError(`invalid container id "${id}": only [a-zA-Z0-9_+.-] allowed`);
  return id;
}

// <root>/oci/<id>: the runtime's containers; the engine keeps images and its own records
// beside it (<root>/image, <root>/containers), so no container id can collide with them.
export function ociDir(root: string): string {
  return path.join(root, 'oci');
}

export function containerDir(root: string, id: string): string {
  return path.join(root, 'oci', id);
}

/** Reserve the id: fails if a container with it exists. */
export function reserve(root: string, id: string): string {
  fs.mkdirSync(ociDir(root), { recursive: true, mode: 0o711 });
  const dir = containerDir(root, id);
  try {
    fs.mkdirSync(dir, { mode: 0o711 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new TsrunError(`container with id ${id} already exists`);
    throw new TsrunError(`mkdir ${dir}: ${(e as Error).message}`);
  }
  return dir;
}

export function writeAtomic(file: string, data: string, mode = 0o600): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}`);
  const fd = fs.openSync(tmp, 'wx', mode);
  try {
    fs.writeSync(fd, data);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

export function saveRecord(root: string, rec: ContainerRecord): void {
  writeAtomic(path.join(containerDir(root, rec.id), 'state.json'), JSON.stringify(rec));
}

export function loadRecord(root: string, id: string): ContainerRecord {
  validateId(id);
  const dir = containerDir(root, id);
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, 'state.json'), 'utf8');
  } catch {
    throw new TsrunError(`container ${id} does not exist`);
  }
  try {
    return JSON.parse(text) as ContainerRecord;
  } catch {
    throw new TsrunError(`container ${id}: state file ${path.join(dir, 'state.json')} is corrupt`);
  }
}

export function listIds(root: string): string[] {
  try {
    const dir = ociDir(root);
    return fs.readdirSync(dir).filter((n) => ID_RE.test(n) && fs.existsSync(path.join(dir, n, 'state.json'))).sort();
  } catch {
    return [];
  }
}

/** Field 22 (starttime) and the state letter of /proc/PID/stat, or undefined. */
export function procStat(pid: number): { start: string; state: string } | undefined {
  if (!pid) return undefined;
  let s: string;
  try {
    s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { state: rest[0], start: rest[19] };
}

export function isAlive(rec: ContainerRecord): boolean {
  const st = procStat(rec.pid);
  return !!st && st.start === rec.startTime && st.state !== 'Z' && st.state !== 'X';
}

export function status(root: string, rec: ContainerRecord, frozen: () => boolean): Status {
  if (!isAlive(rec)) return 'stopped';
  if (fs.existsSync(path.join(containerDir(root, rec.id), 'exec.fifo'))) return 'created';
  if (frozen()) return 'paused';
  return 'running';
}

export function toState(rec: ContainerRecord, st: Status): State {
  return {
    ociVersion: rec.config.ociVersion,
    id: rec.id,
    pid: st === 'stopped' ? 0 : rec.pid,
    status: st,
    bundle: rec.bundle,
    rootfs: rec.rootfs,
    created: rec.created,
    owner: rec.owner,
    annotations: rec.annotations ?? {},
  };
}

/** Remove a container's state directory (its files are known; no recursive walk). */
export function removeDir(root: string, id: string): void {
  const dir = containerDir(root, id);
  for (const f of ['state.json', 'exec.fifo']) {
    try { fs.unlinkSync(path.join(dir, f)); } catch { /* absent */ }
  }
  try {
    fs.rmdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    fs.rmSync(dir, { recursive: true, force: true }); // leftovers of a killed writer
  }
}
