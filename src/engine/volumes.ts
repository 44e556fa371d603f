// Volumes as Docker's "local" driver keeps them: <root>/volumes/<name>/_data (the mountpoint) and
// <root>/volumes/<name>/volume.json (creation time, labels). Anonymous volumes (`-v /dst`, an
// image's VOLUME) get a random 64-hex name and the label com.docker.volume.anonymous, as Docker
// 23+ does: `rm -v`, `run --rm` and a plain `volume prune` remove those only.
//
// Also here: the -v / --mount / --tmpfs syntaxes (Docker's parser and error texts) and the
// resolution of a container's mount requests into OCI mounts (host dirs created for -v, volumes
// created on first use and filled with the image's content at their destination).
import fs = require('fs');
import path = require('path');
import crypto = require('crypto');
import { TsrunError } from '../runtime/errors';
import type { Mount } from '../runtime/spec';
import { logEvent } from './events';

export const ANONYMOUS_LABEL = 'com.docker.volume.anonymous';
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** What `volume inspect` prints (docker's field order). */
export interface VolumeInfo {
  CreatedAt: string;
  Driver: 'local';
  Labels: Record<string, string>;
  Mountpoint: string;
  Name: string;
  Options: Record<string, string> | null;
  Scope: 'local';
}

/** A volume a container mounts (ContainerRecord.volumes). */
export interface ContainerVolume { name: string; anonymous: boolean; destination: string }

/** One -v, --mount or --tmpfs, parsed; resolved against the host and the image by resolveMounts. */
export interface MountRequest {
  type: 'bind' | 'volume' | 'tmpfs';
  /** bind: the host path; volume: the name (none: an anonymous volume) */
  source?: string;
  target: string;
  readonly: boolean;
  /** bind propagation (rprivate by default) */
  propagation?: string;
  /** bind: not recursive (--mount bind-nonrecursive) */
  nonRecursive?: boolean;
  /** volume: do not copy the image's content in (nocopy, volume-nocopy) */
  nocopy?: boolean;
  /** bind: create a missing host directory (-v does, --mount refuses) */
  createSource?: boolean;
  /** tmpfs: mount options (size=, mode=, exec, ...) */
  tmpfsOptions?: string[];
  /** volume: labels for a volume created by this mount (--mount volume-label=) */
  labels?: Record<string, string>;
  /** the flag's value, for error messages */
  spec: string;
}

export function volumesDir(root: string): string {
  return path.join(path.resolve(root), 'volumes');
}

export function volumeDir(root: string, name: string): string {
  return path.join(volumesDir(root), name);
}

export function volumeMountpoint(root: string, name: string): string {
  return path.join(volumeDir(root, name), '_data');
}

export function validVolumeName(name: string): boolean {
  return NAME_RE.test(name);
}

function invalidName(name: string): string {
  return `"${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`;
}

export function newVolumeName(): string {
  return crypto.randomBytes(32).toString('hex');
}

/** The volume, or undefined when there is none of that name. */
export function getVolume(root: string, name: string): VolumeInfo | undefined {
  if (!validVolumeName(name)) return undefined;
  const dir = volumeDir(root, name);
  let st: fs.Stats;
  try { st = fs.statSync(path.join(dir, '_data')); } catch { return undefined; }
  let meta: { CreatedAt?: string; Labels?: Record<string, string>; Options?: Record<string, string> | null } = {};
  try { meta = JSON.parse(fs.readFileSync(path.join(dir, 'volume.json'), 'utf8')); } catch { /* being created, or made by hand */ }
  return {
    CreatedAt: meta.CreatedAt ?? rfc3339(st.birthtime.getTime() ? st.birthtime : st.mtime),
    Driver: 'local', Labels: meta.Labels ?? {}, Mountpoint: path.join(dir, '_data'), Name: name,
    Options: meta.Options ?? null, Scope: 'local',
  };
}

export function listVolumes(root: string): VolumeInfo[] {
  let names: string[];
  try { names = fs.readdirSync(volumesDir(root)); } catch { return []; }
  return names.sort().map((n) => getVolume(root, n)).filter((v): v is VolumeInfo => !!v);
}

/** docker's CreatedAt: RFC 3339 in seconds, local time with its offset ("2024-05-01T10:00:00+02:00"). */
function rfc3339(d: Date): string {
  const off = -d.getTimezoneOffset();
  const p = (n: number) => String(Math.floor(Math.abs(n))).padStart(2, '0');
  const local = new Date(d.getTime() + off * 60000).toISOString().slice(0, 19);
  return local + (off === 0 ? 'Z' : `${off > 0 ? '+' : '-'}${p(off / 60)}:${p(off % 60)}`);
}

/**
 * Create a volume, or return the one of that name ("create" of an existing name is not an error,
 * as in docker). `created` says whether this call made it.
 */
export function createVolume(root: string, name: string | undefined, labels: Record<string, string> = {}): { volume: VolumeInfo; created: boolean } {
  name ??= newVolumeName();
  if (!validVolumeName(name)) throw new TsrunError(`create ${name}: ${invalidName(name)}`, 125);
  fs.mkdirSync(volumesDir(root), { recursive: true, mode: 0o701 });
  const dir = volumeDir(root, name);
  let created = false;
  try {
    fs.mkdirSync(dir, { mode: 0o701 });
    created = true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  if (created) {
    fs.mkdirSync(path.join(dir, '_data'), { mode: 0o755 });
    const meta = { CreatedAt: rfc3339(new Date()), Labels: labels, Options: null };
    const tmp = path.join(dir, `.volume.json.${process.pid}`);
    fs.writeFileSync(tmp, JSON.stringify(meta, null, 2) + '\n', { mode: 0o600 });
    fs.renameSync(tmp, path.join(dir, 'volume.json'));
    logEvent(root, 'volume', 'create', name, { driver: 'local' });
  } else {
    fs.mkdirSync(path.join(dir, '_data'), { recursive: true, mode: 0o755 });
  }
  return { volume: getVolume(root, name)!, created };
}

// ---- who uses a volume ----------------------------------------------------------------------

interface UserRecord { id: string; name?: string; volumes?: ContainerVolume[] }

/** Names of the volumes container `id` mounts: from its record, else from its config.json. */
export function containerVolumeNames(root: string, id: string, rec?: UserRecord): ContainerVolume[] {
  if (rec?.volumes) return rec.volumes;
  const base = volumesDir(root) + '/';
  let mounts: Mount[] = [];
  try {
    mounts = (JSON.parse(fs.readFileSync(path.join(path.resolve(root), 'containers', id, 'config.json'), 'utf8')) as { mounts?: Mount[] }).mounts ?? [];
  } catch { /* no bundle (yet) */ }
  const out: ContainerVolume[] = [];
  for (const m of mounts) {
    const src = m.source ?? '';
    if (!src.startsWith(base)) continue;
    const [name, data] = src.slice(base.length).split('/');
    if (data !== '_data' || !name) continue;
    out.push({ name, anonymous: isAnonymous(root, name), destination: m.destination });
  }
  return out;
}

function isAnonymous(root: string, name: string): boolean {
  const v = getVolume(root, name);
  return !!v && Object.prototype.hasOwnProperty.call(v.Labels, ANONYMOUS_LABEL);
}

/** Ids of the containers (running or not) that mount the volume. */
export function volumeUsers(root: string, name: string, exceptId?: string): string[] {
  const dir = path.join(path.resolve(root), 'containers');
  let ids: string[];
  try { ids = fs.readdirSync(dir); } catch { return []; }
  const out: string[] = [];
  for (const id of ids) {
    if (id === exceptId) continue;
    let rec: UserRecord | undefined;
    try { rec = JSON.parse(fs.readFileSync(path.join(dir, id, 'container.json'), 'utf8')); } catch { /* half-created */ }
    if (containerVolumeNames(root, id, rec).some((v) => v.name === name)) out.push(id);
  }
  return out;
}

/**
 * `volume rm`: throws for an unknown name, and refuses a volume a container uses, with -f too
 * (docker's VolumeRm: force only makes an unknown name not an error; the caller handles that).
 */
export function removeVolume(root: string, name: string): void {
  if (!getVolume(root, name)) throw new TsrunError(`get ${name}: no such volume`);
  const users = volumeUsers(root, name);
  if (users.length) throw new TsrunError(`remove ${name}: volume is in use - [${users.join(', ')}]`);
  deleteVolumeDir(root, name);
}

function deleteVolumeDir(root: string, name: string): void {
  // rename first: a half-removed volume never looks like a volume
  const dir = volumeDir(root, name);
  const trash = path.join(volumesDir(root), `.removing-${name}-${process.pid}`);
  try { fs.renameSync(dir, trash); } catch { return; }
  fs.rmSync(trash, { recursive: true, force: true });
  logEvent(root, 'volume', 'destroy', name, { driver: 'local' });
}

/**
 * The anonymous volumes of a container being removed with -v (or --rm): the ones no other
 * container uses. Call before the container's directory (its config.json) is gone.
 */
export function removeAnonymousVolumes(root: string, rec: UserRecord): string[] {
  const removed: string[] = [];
  for (const v of containerVolumeNames(root, rec.id, rec)) {
    if (!v.anonymous || !getVolume(root, v.name)) continue;
    if (volumeUsers(root, v.name, rec.id).length) continue;
    deleteVolumeDir(root, v.name);
    removed.push(v.name);
  }
  return removed;
}

/** `volume prune`: unused anonymous volumes (all unused ones with `all`); names and bytes freed. */
export function pruneVolumes(root: string, all: boolean, keep: (v: VolumeInfo) => boolean = () => true): { deleted: string[]; bytes: number } {
  const deleted: string[] = [];
  let bytes = 0;
  for (const v of listVolumes(root)) {
    if (!all && !Object.prototype.hasOwnProperty.call(v.Labels, ANONYMOUS_LABEL)) continue;
    if (!keep(v) || volumeUsers(root, v.Name).length) continue;
    bytes += diskUsage(v.Mountpoint);
    deleteVolumeDir(root, v.Name);
    deleted.push(v.Name);
  }
  return { deleted, bytes };
}

export function diskUsage(p: string): number {
  let total = 0;
  const walk = (f: string) => {
    let st: fs.Stats;
    try { st = fs.lstatSync(f); } catch { return; }
    total += st.isDirectory() ? 0 : st.size;
    if (st.isDirectory()) {
      let names: string[] = [];
      try { names = fs.readdirSync(f); } catch { /* unreadable */ }
      for (const n of names) walk(path.join(f, n));
    }
  };
  walk(p);
  return total;
}

// ---- flag syntaxes --------------------------------------------------------------------------

const PROPAGATIONS = ['shared', 'rshared', 'slave', 'rslave', 'private', 'rprivate'];

function invalidSpec(spec: string, why?: string): TsrunError {
  return new TsrunError(`invalid volume specification: '${spec}'${why ? ': ' + why : ''}`, 125);
}

function mountConfigError(type: string, why: string): string {
  return `invalid mount config for type "${type}": ${why}`;
}

/** Docker's linuxValidMountMode: comma-separated, at most one of each kind. */
function parseMode(mode: string): { ok: boolean; rw?: string; propagation?: string; copy?: string } {
  if (mode === '') return { ok: true };
  const kinds: Record<string, string> = {};
  for (const o of mode.split(',')) {
    const kind = o === 'rw' || o === 'ro' ? 'rw' : o === 'z' || o === 'Z' ? 'label'
      : PROPAGATIONS.includes(o) ? 'propagation' : o === 'nocopy' ? 'copy'
        : ['consistent', 'cached', 'delegated'].includes(o) ? 'consistency' : undefined;
    if (!kind || kinds[kind] !== undefined) return { ok: false };
    kinds[kind] = o;
  }
  return { ok: true, rw: kinds.rw, propagation: kinds.propagation, copy: kinds.copy };
}

function checkTarget(type: string, target: string): string | undefined {
  if (!target) return mountConfigError(type, 'field Target must not be empty');
  if (!path.posix.isAbsolute(target)) return mountConfigError(type, `invalid mount path: '${target}' mount path must be absolute`);
  if (path.posix.normalize(target) === '/') return mountConfigError(type, "invalid specification: destination can't be '/'");
  return undefined;
}

/** `-v SRC:DST[:MODE]`, `-v NAME:DST[:MODE]`, `-v DST` (docker's ParseMountRaw for Linux). */
export function parseVolumeFlag(raw: string): MountRequest {
  const arr = splitN(raw, ':', 4);
  if (arr[0] === '') throw invalidSpec(raw);
  let source: string | undefined, target: string, mode = '';
  switch (arr.length) {
    case 1: target = arr[0]; break;
    case 2:
      if (parseMode(arr[1]).ok) throw invalidSpec(raw); // "/foo:rw": a volume cannot take a mode alone
      source = arr[0]; target = arr[1];
      break;
    case 3: source = arr[0]; target = arr[1]; mode = arr[2]; break;
    default: throw invalidSpec(raw);
  }
  const m = parseMode(mode);
  if (!m.ok) throw new TsrunError(`invalid mode: ${mode}`, 125);
  const type = source !== undefined && path.posix.isAbsolute(source) ? 'bind' : 'volume';
  const bad = checkTarget(type, target);
  if (bad) throw invalidSpec(raw, bad);
  if (type === 'volume' && source !== undefined && !validVolumeName(source)) throw new TsrunError(`create ${source}: ${invalidName(source)}`, 125);
  if (type === 'volume' && m.propagation) throw invalidSpec(raw, mountConfigError('volume', 'propagation is only supported for bind mounts'));
  return {
    type, source, target: path.posix.normalize(target), readonly: m.rw === 'ro', spec: raw,
    ...(m.propagation ? { propagation: m.propagation } : {}),
    ...(m.copy === 'nocopy' ? { nocopy: true } : {}),
    ...(type === 'bind' ? { createSource: true } : {}),
  };
}

/** `--mount type=bind|volume|tmpfs,source=,target=,readonly,...` (docker's CSV syntax). */
export function parseMountFlag(raw: string): MountRequest {
  const bad = (why: string) => new TsrunError(`invalid argument "${raw}" for "--mount" flag: ${why}`, 125);
  let type = 'volume';
  let source: string | undefined, target = '';
  let readonly = false, nocopy = false, nonRecursive = false;
  let propagation: string | undefined;
  const labels: Record<string, string> = {};
  const tmpfs: string[] = [];
  const seenBind: string[] = [], seenVolume: string[] = [], seenTmpfs: string[] = [];
  for (const field of splitCsv(raw)) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    const value = eq < 0 ? undefined : field.slice(eq + 1);
    if (value === undefined && !['readonly', 'ro', 'volume-nocopy', 'bind-nonrecursive'].includes(key)) {
      throw bad(`invalid field '${field}' must be a key=value pair`);
    }
    const bool = () => {
      if (value === undefined) return true;
      if (/^(1|t|T|TRUE|true|True)$/.test(value)) return true;
      if (/^(0|f|F|FALSE|false|False)$/.test(value)) return false;
      throw bad(`invalid value for ${key}: ${value}`);
    };
    switch (key) {
      case 'type': type = value!; break;
      case 'source': case 'src': source = value; break;
      case 'target': case 'dst': case 'destination': target = value!; break;
      case 'readonly': case 'ro': readonly = bool(); break;
      case 'consistency': break;
      case 'bind-propagation':
        if (!PROPAGATIONS.includes(value!)) throw bad(`invalid value for bind-propagation: ${value}`);
        propagation = value; seenBind.push(key); break;
      case 'bind-nonrecursive': nonRecursive = bool(); seenBind.push(key); break;
      case 'volume-nocopy': nocopy = bool(); seenVolume.push(key); break;
      case 'volume-label': {
        const i = value!.indexOf('=');
        labels[i < 0 ? value! : value!.slice(0, i)] = i < 0 ? '' : value!.slice(i + 1);
        seenVolume.push(key);
        break;
      }
      case 'volume-driver':
        if (value !== 'local') throw bad(`volume driver "${value}" is not supported (only "local")`);
        seenVolume.push(key); break;
      case 'volume-opt': throw bad('volume-opt is not supported by tsrun\'s local volumes');
      case 'tmpfs-size': {
        const n = parseBytes(value!);
        if (n === undefined) throw bad(`invalid value for ${key}: ${value}`);
        tmpfs.push(`size=${n}`); seenTmpfs.push(key); break;
      }
      case 'tmpfs-mode':
        if (!/^[0-7]{1,4}$/.test(value!)) throw bad(`invalid value for ${key}: ${value}`);
        tmpfs.push(`mode=${parseInt(value!, 8).toString(8)}`); seenTmpfs.push(key); break;
      default: throw bad(`unexpected key '${key}' in '${field}'`);
    }
  }
  if (!['bind', 'volume', 'tmpfs'].includes(type)) throw new TsrunError(mountConfigError(type, 'mount type unknown'), 125);
  const why = checkTarget(type, target);
  if (why) throw new TsrunError(why, 125);
  const other = (list: string[], owner: string) => {
    if (list.length && type !== owner) throw new TsrunError(mountConfigError(type, `cannot mix '${list[0]}' options with type '${type}'`), 125);
  };
  other(seenBind, 'bind'); other(seenVolume, 'volume'); other(seenTmpfs, 'tmpfs');
  if (type === 'bind') {
    if (!source) throw new TsrunError(mountConfigError('bind', 'field Source must not be empty'), 125);
    if (!path.posix.isAbsolute(source)) throw new TsrunError(mountConfigError('bind', `invalid mount path: '${source}' mount path must be absolute`), 125);
  }
  if (type === 'tmpfs' && source) throw new TsrunError(mountConfigError('tmpfs', 'field Source must be empty'), 125);
  if (type === 'volume' && source && !validVolumeName(source)) throw new TsrunError(`create ${source}: ${invalidName(source)}`, 125);
  const req: MountRequest = { type: type as MountRequest['type'], target: path.posix.normalize(target), readonly, spec: raw };
  if (source) req.source = source;
  if (propagation) req.propagation = propagation;
  if (nonRecursive) req.nonRecursive = true;
  if (nocopy) req.nocopy = true;
  if (Object.keys(labels).length) req.labels = labels;
  if (type === 'tmpfs') req.tmpfsOptions = tmpfs;
  return req;
}

/** `--tmpfs /path[:opts]` */
export function parseTmpfsFlag(raw: string): MountRequest {
  const i = raw.indexOf(':');
  const target = i < 0 ? raw : raw.slice(0, i);
  const opts = i < 0 ? [] : raw.slice(i + 1).split(',').filter(Boolean);
  const why = checkTarget('tmpfs', target);
  if (why) throw new TsrunError(`invalid tmpfs spec '${raw}': ${why}`, 125);
  return { type: 'tmpfs', target: path.posix.normalize(target), readonly: false, tmpfsOptions: opts, spec: raw };
}

function splitN(s: string, sep: string, n: number): string[] {
  const parts = s.split(sep);
  if (parts.length <= n) return parts;
  return [...parts.slice(0, n - 1), parts.slice(n - 1).join(sep)];
}

/** One CSV record (encoding/csv as docker's --mount uses it: "..." quotes, "" escapes). */
function splitCsv(s: string): string[] {
  const out: string[] = [];
  let cur = '', quoted = false, i = 0;
  while (i < s.length) {
    const c = s[i];
    if (quoted) {
      if (c === '"' && s[i + 1] === '"') { cur += '"'; i += 2; continue; }
      if (c === '"') { quoted = false; i++; continue; }
      cur += c; i++; continue;
    }
    if (c === '"' && cur === '') { quoted = true; i++; continue; }
    if (c === ',') { out.push(cur); cur = ''; i++; continue; }
    cur += c; i++;
  }
  out.push(cur);
  return out.filter((f) => f !== '');
}

/** docker's RAMInBytes: "64m", "1.5g", "100", "2KiB" (binary units; b, k, m, g, t, p). */
export function parseBytes(v: string): number | undefined {
  const m = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(v);
  if (!m) return undefined;
  const n = Number(m[1]);
  if (!Number.isFinite(n)) return undefined;
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 }[(m[2] ?? '').toLowerCase()] ?? 1;
  return Math.floor(n * mult);
}

// ---- a container's mounts --------------------------------------------------------------------

/** Docker's tmpfs options: noexec,nosuid,nodev first, the user's after; the last of a pair wins. */
export function mergeTmpfsOptions(opts: string[]): string[] {
  const pairs: Record<string, string> = {
    exec: 'exec', noexec: 'exec', suid: 'suid', nosuid: 'suid', dev: 'dev', nodev: 'dev', rw: 'rw', ro: 'rw',
    atime: 'atime', noatime: 'atime', diratime: 'diratime', nodiratime: 'diratime', relatime: 'atime', strictatime: 'atime',
  };
  const seen = new Set<string>();
  const out: string[] = [];
  for (const o of [...opts].reverse()) {
    const key = o.includes('=') ? o.slice(0, o.indexOf('=')) + '=' : pairs[o] ?? o;
    if (seen.has(key)) continue;
    seen.add(key);
    out.unshift(o);
  }
  return out;
}

export interface ResolvedMounts { mounts: Mount[]; volumes: ContainerVolume[] }

/**
 * Mount requests (and the image's VOLUMEs) → OCI mounts. Creates what is missing: the host dir of
 * a -v bind, named volumes on first use (filled with the image's content at their destination while
 * they are empty), anonymous volumes. Everything is checked before anything is created; on a failure
 * the anonymous volumes this call made are removed again.
 */
export function resolveMounts(root: string | undefined, rootfs: string, reqs: MountRequest[], imageVolumes: string[] = []): ResolvedMounts {
  const seen = new Set<string>();
  for (const r of reqs) {
    if (seen.has(r.target)) throw new TsrunError(`Duplicate mount point: ${r.target}`, 125);
    seen.add(r.target);
  }
  const all = [...reqs];
  for (const v of imageVolumes) {
    const t = path.posix.normalize(v);
    if (!path.posix.isAbsolute(t) || t === '/' || seen.has(t)) continue;
    seen.add(t);
    all.push({ type: 'volume', target: t, readonly: false, spec: t });
  }
  for (const r of all) {
    if (r.type === 'bind' && !r.createSource && !fs.existsSync(r.source!)) {
      throw new TsrunError(mountConfigError('bind', `bind source path does not exist: ${r.source}`), 125);
    }
    if (r.type === 'volume' && !root) throw new TsrunError('volumes need the state root', 125);
  }
  const made: string[] = [];
  try {
    const mounts: Mount[] = [];
    const volumes: ContainerVolume[] = [];
    for (const r of all) {
      if (r.type === 'tmpfs') {
        const opts = mergeTmpfsOptions(['noexec', 'nosuid', 'nodev', ...(r.readonly ? ['ro'] : []), ...(r.tmpfsOptions ?? [])]);
        mounts.push({ destination: r.target, type: 'tmpfs', source: 'tmpfs', options: opts });
        continue;
      }
      let source: string;
      if (r.type === 'bind') {
        source = path.resolve(r.source!);
        if (r.createSource && !fs.existsSync(source)) fs.mkdirSync(source, { recursive: true, mode: 0o755 });
      } else {
        const anonymous = !r.source;
        const { volume, created } = createVolume(root!, r.source, anonymous ? { [ANONYMOUS_LABEL]: '' } : (r.labels ?? {}));
        if (anonymous && created) made.push(volume.Name);
        source = volume.Mountpoint;
        if (!r.nocopy) copyImageContent(rootfs, r.target, source);
        volumes.push({ name: volume.Name, anonymous, destination: r.target });
      }
      const opts = [r.nonRecursive ? 'bind' : 'rbind', ...(r.readonly ? ['ro'] : []), r.propagation ?? 'rprivate'];
      mounts.push({ destination: r.target, type: 'bind', source, options: opts });
    }
    // parents before children (docker sorts by the number of path components)
    const depth = (m: Mount) => path.posix.normalize(m.destination).split('/').length;
    mounts.sort((a, b) => depth(a) - depth(b));
    return { mounts, volumes };
  } catch (e) {
    for (const n of made) deleteVolumeDir(root!, n);
    throw e;
  }
}

/** Docker copies the image's files at a volume's destination into the volume while it is empty. */
function copyImageContent(rootfs: string, target: string, volumeData: string): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { resolveInRoot } = require('./cp') as typeof import('./cp');
  let src: string;
  try { src = resolveInRoot(rootfs, target); } catch { return; }
  let st: fs.Stats;
  try { st = fs.statSync(src); } catch { return; }
  if (!st.isDirectory()) return;
  if (fs.readdirSync(volumeData).length) return;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { spawnSync } = require('child_process') as typeof import('child_process');
  // cp -a: owners, modes, times, links, special files; "src/." onto the volume root takes the
  // directory's own owner and mode too, as docker does
  const r = spawnSync('cp', ['-a', '--', src + '/.', volumeData + '/'], { encoding: 'utf8' });
  if (r.status !== 0) throw new TsrunError(`copy the image's ${target} into its volume: ${(r.stderr || r.error?.message || '').trim().split('\n')[0]}`, 125);
}
