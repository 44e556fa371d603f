// The engine's container records: <root>/containers/<id>/container.json, beside the bundle
// (config.json) and the overlay snapshot dirs (upper, work, rootfs) of the container.
import fs = require('fs');
import path = require('path');
import crypto = require('crypto');
import { TsrunError } from '../runtime/errors';
import { writeAtomic, procStat } from '../runtime/state';
import { withFileLock } from '../kernel/fsops';

export interface ContainerRecord {
  id: string;             // 64 hex
  name: string;
  image: string;          // the reference the user gave
  imageId: string;        // config digest
  chainId?: string;       // top layer of the image (the snapshot's lower)
  created: string;
  args: string[];
  autoRemove: boolean;
  tty: boolean;
  exitCode?: number;
  finishedAt?: string;
  oomKilled?: boolean;
  startedAt?: string;
  restart?: string;       // no | always | unless-stopped | on-failure[:N]
  detached?: boolean;
  openStdin?: boolean;    // -i: the supervisor keeps the container's stdin for `attach`
  volumes?: { name: string; anonymous: boolean; destination: string }[];
  labels?: Record<string, string>;   // image labels merged with --label
  stopSignal?: string;               // --stop-signal or the image's StopSignal
  stopTimeout?: number;              // --stop-timeout, seconds
  net?: import('./network/config').NetConfig;   // --network, -p, --dns...: see network/
  /** --log-driver json-file (the default) or none; --log-opt max-size (bytes) and max-file */
  log?: { driver: 'json-file' | 'none'; maxSize?: number; maxFile?: number };
  /** the health check (the image's HEALTHCHECK and --health-*): see health.ts */
  health?: import('./health').HealthConfig;
}

/** The json-file log of a container (its rotated files are FILE.1, FILE.2, ... beside it). */
export function logPath(root: string, id: string): string {
  return path.join(containerPath(root, id), `${id}-json.log`);
}

export function containersDir(root: string): string {
  return path.join(root, 'containers');
}

export function containerPath(root: string, id: string): string {
  return path.join(containersDir(root), id);
}

export function newId(): string {
  return crypto.randomBytes(32).toString('hex');
}

const ADJ = ['brave', 'calm', 'eager', 'fancy', 'gentle', 'happy', 'jolly', 'keen', 'lucid', 'merry', 'nifty', 'proud', 'quirky', 'sharp', 'tender', 'vivid', 'witty', 'zen'];
const NOUN = ['turing', 'hopper', 'lovelace', 'ritchie', 'thompson', 'torvalds', 'knuth', 'dijkstra', 'hamilton', 'liskov', 'lamport', 'wirth', 'kay', 'perlman', 'allen', 'backus'];

export function generateName(taken: Set<string>): string {
  for (let i = 0; ; i++) {
    const n = `${ADJ[crypto.randomInt(ADJ.length)]}_${NOUN[crypto.randomInt(NOUN.length)]}${i > 10 || taken.size > 100 ? crypto.randomInt(1000) : ''}`;
    if (!taken.has(n)) return n;
  }
}

export function listContainers(root: string): ContainerRecord[] {
  let names: string[];
  try { names = fs.readdirSync(containersDir(root)); } catch { return []; }
  const out: ContainerRecord[] = [];
  for (const n of names) {
    if (n.startsWith('.')) {
      // a record being reserved: swept once the command that makes it is dead (or it is old)
      try {
        const p = path.join(containersDir(root), n);
        if (!reserverAlive(n) || Date.now() - fs.statSync(p).mtimeMs > 600_000) fs.rmSync(p, { recursive: true, force: true });
      } catch { /* swept by another process */ }
      continue;
    }
    try { out.push(JSON.parse(fs.readFileSync(path.join(containersDir(root), n, 'container.json'), 'utf8'))); } catch { /* half-created or removed */ }
  }
  return out;
}

/** A hidden record's name: `.ID.PID.STARTTIME`, its maker (a pid alone could be reused), in the name itself (no window). */
function hiddenName(id: string): string {
  return `.${id}.${process.pid}.${procStat(process.pid)?.start ?? 0}`;
}

/** Is the command that makes this hidden record alive? (A name of another shape: the 10-minute rule alone.) */
function reserverAlive(name: string): boolean {
  const m = /^\.[0-9a-f]{64}\.(\d+)\.(\d+)$/.exec(name);
  if (!m) return true;
  const st = procStat(Number(m[1]));
  return !!st && st.start === m[2] && st.state !== 'Z' && st.state !== 'X';
}

/** The hidden record of id whose maker is alive, if there is one. */
function hiddenAlive(root: string, id: string): boolean {
  try { return fs.readdirSync(containersDir(root)).some((n) => n.startsWith(`.${id}.`) && reserverAlive(n)); } catch { return false; }
}

/** By full id, unique id prefix or name. */
export function findContainer(root: string, key: string): ContainerRecord {
  const all = listContainers(root);
  const byName = all.find((c) => c.name === key || '/' + c.name === key);
  if (byName) return byName;
  const hits = all.filter((c) => c.id.startsWith(key));
  if (hits.length === 1 && key.length > 0) return hits[0];
  if (hits.length > 1) throw new TsrunError(`multiple containers found with id prefix ${key}`);
  throw new TsrunError(`No such container: ${key}`);
}

export function saveContainer(root: string, c: ContainerRecord): void {
  writeAtomic(path.join(containerPath(root, c.id), 'container.json'), JSON.stringify(c, null, 2), 0o600);
}

/**
 * Create the record with an exclusive name. The record is written first in a hidden `.<id>.<pid>.<start>`
 * dir (a create killed half-way leaves at most that, which listContainers sweeps once its maker, named
 * in the dir's name, is dead, or once it is 10 minutes old), then
 * the name is taken (`names/<name>` created exclusively), then the dir is renamed into place. A
 * name file whose owner has neither dir is stale (its container is gone): it is taken over under
 * `names/.lock`, re-checked there, so two commands never both take it.
 */
export function reserveContainer(root: string, c: ContainerRecord): void {
  fs.mkdirSync(containersDir(root), { recursive: true, mode: 0o711 });
  const names = path.join(root, 'names');
  fs.mkdirSync(names, { recursive: true, mode: 0o711 });
  const tmp = path.join(containersDir(root), hiddenName(c.id));
  fs.mkdirSync(tmp, { mode: 0o711 });
  try {
    writeAtomic(path.join(tmp, 'container.json'), JSON.stringify(c, null, 2), 0o600);
    takeName(root, c.name, c.id);
    fs.renameSync(tmp, containerPath(root, c.id));
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** names/<name> for container id: created exclusively, or taken over (under a lock) when its owner's record is gone. */
export function takeName(root: string, name: string, id: string): void {
  const names = path.join(root, 'names');
  const file = path.join(names, name);
  try {
    fs.writeFileSync(file, id, { flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    withFileLock(path.join(names, '.lock'), () => {
      const owner = fs.readFileSync(file, 'utf8');
      if (owner !== id && (fs.existsSync(containerPath(root, owner)) || hiddenAlive(root, owner))) {
        throw new TsrunError(`Conflict. The container name "/${name}" is already in use by container "${owner}". You have to remove (or rename) that container to be able to reuse that name.`, 125);
      }
      writeAtomic(file, id, 0o644);
    });
  }
}

export function releaseContainer(root: string, c: ContainerRecord): void {
  try {
    if (fs.readFileSync(path.join(root, 'names', c.name), 'utf8') === c.id) fs.unlinkSync(path.join(root, 'names', c.name));
  } catch { /* gone */ }
  fs.rmSync(containerPath(root, c.id), { recursive: true, force: true });
}

/** A name or id prefix of an engine container → its id; anything else unchanged (a runtime id). */
export function resolveId(root: string, key: string): string {
  if (/^[0-9a-f]{64}$/.test(key)) return key;
  try { return findContainer(root, key).id; } catch { return key; }
}

export function isEngineContainer(root: string, key: string): boolean {
  try { findContainer(root, key); return true; } catch { return false; }
}
