// Filesystem system calls Node does not offer, for the image store: mknod, extended attributes
// (l*xattr: never following symlinks), umount2, flock, and overlayfs mounted with the new mount
// API (fsopen/fsconfig "lowerdir+"/fsmount/move_mount). They live in tsrun's C shim
// (native/shim.c); the library is loaded on first use, with koffi, from the same file as native().
//
// Every failure throws an FsError naming the operation, the path and the reason:
//   "mknod /var/lib/tsrun/image/tmp/x/diff/dev/null: Operation not permitted"
import fs = require('fs');
import path = require('path');
import { koffi, repoDir, strerror, errnoName, native } from './native';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Fn = (...args: any[]) => any;

interface FsLib {
  mknod: Fn;
  lsetxattr: Fn;
  lgetxattr: Fn;
  llistxattr: Fn;
  umount2: Fn;
  mountOverlay: Fn;
}

let lib: FsLib | undefined;

function fslib(): FsLib {
  if (lib) return lib;
  const k = koffi();
  const l = k.load(process.env.TSRUN_SHIM || path.join(repoDir(), 'native', 'build', 'libtsrun.so'));
  lib = {
    mknod: l.func('int tsrun_mknod(const char *path, unsigned int mode, unsigned int major, unsigned int minor)'),
    lsetxattr: l.func('int tsrun_lsetxattr(const char *path, const char *name, const uint8_t *value, uint32_t len, int flags)'),
    lgetxattr: l.func('int tsrun_lgetxattr(const char *path, const char *name, uint8_t *buf, uint32_t len)'),
    llistxattr: l.func('int tsrun_llistxattr(const char *path, uint8_t *buf, uint32_t len)'),
    umount2: l.func('int tsrun_umount2(const char *path, int flags)'),
    mountOverlay: l.func('int tsrun_mount_overlay(const char *target, const uint8_t *lowers, int nlower, const char *upper, const char *work, const uint8_t *opts, int nopts, int readonly, uint8_t *err, int errlen)'),
  };
  return lib;
}

/** A failed system call: `${op} ${path}: ${reason}`, with the errno and its name (code). */
export class FsError extends Error {
  readonly errno: number;
  readonly code: string;
  constructor(op: string, file: string, errno: number, detail?: string) {
    super(`${op} ${file}: ${detail || strerror(errno)}`);
    this.errno = errno;
    this.code = errnoName(errno);
  }
}

function check(r: number, op: string, file: string): number {
  if (r < 0) throw new FsError(op, file, -r);
  return r;
}

export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;

export const MNT_FORCE = 1;
export const MNT_DETACH = 2;
export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;

/** mknod(2): mode includes the file type (S_IFCHR, S_IFBLK, S_IFIFO). */
export function mknod(file: string, mode: number, major = 0, minor = 0): void {
  check(fslib().mknod(file, mode >>> 0, major >>> 0, minor >>> 0), 'mknod', file);
}

export function lsetxattr(file: string, name: string, value: Buffer | string, flags = 0): void {
  const v = typeof value === 'string' ? Buffer.from(value) : value;
  const r = fslib().lsetxattr(file, name, v.length ? v : Buffer.alloc(1), v.length, flags);
  if (r < 0) throw new FsError('lsetxattr', `${file} (${name})`, -r);
}

const XATTR_SIZE_MAX = 65536;
let scratch: Buffer | undefined;

/** lgetxattr(2): the value, or undefined when the file has no such attribute (ENODATA). */
export function lgetxattr(file: string, name: string): Buffer | undefined {
  scratch ??= Buffer.alloc(XATTR_SIZE_MAX);
  let buf = scratch;
  for (;;) {
    const r = fslib().lgetxattr(file, name, buf, buf.length);
    if (r === -61 /* ENODATA */) return undefined;
    if (r < 0) throw new FsError('lgetxattr', `${file} (${name})`, -r);
    if (r <= buf.length) return Buffer.from(buf.subarray(0, r));
    buf = Buffer.alloc(r);
  }
}

/** llistxattr(2): the names of the file's extended attributes (none: []; unsupported: []). */
export function llistxattr(file: string): string[] {
  scratch ??= Buffer.alloc(XATTR_SIZE_MAX);
  let buf = scratch;
  for (;;) {
    const r = fslib().llistxattr(file, buf, buf.length);
    if (r === -95 /* EOPNOTSUPP */) return [];
    if (r < 0) throw new FsError('llistxattr', file, -r);
    if (r <= buf.length) return buf.subarray(0, r).toString().split('\0').filter(Boolean);
    buf = Buffer.alloc(r);
  }
}

/** umount2(2); returns 0 or -errno when `tolerate` lists that errno's name, throws otherwise. */
export function umount2(target: string, flags = 0, tolerate: string[] = []): number {
  const r = fslib().umount2(target, flags);
  if (r < 0 && tolerate.includes(errnoName(-r))) return r;
  return check(r, 'umount', target);
}

export interface OverlayOptions {
  /** Lower dirs, top first (overlayfs order). At least one. */
  lowers: string[];
  /** Upper and work dirs; omit both for a read-only overlay. */
  upper?: string;
  work?: string;
  /** Mount read-only (MOUNT_ATTR_RDONLY). */
  readonly?: boolean;
  /** Extra overlay options: "index=off", "metacopy=off", or flags ("userxattr"). */
  options?: string[];
}

const packStrings = (a: string[]): Buffer => Buffer.concat(a.map((s) => Buffer.from(s + '\0')));

/**
 * Mount overlayfs on target through fsopen/fsconfig/fsmount/move_mount, one "lowerdir+" per
 * layer (no 4 KiB option limit); kernels before 6.8 get mount(2) with one option string.
 */
export function mountOverlay(target: string, o: OverlayOptions): void {
  for (const s of [...o.lowers, o.upper ?? '', o.work ?? '', ...(o.options ?? [])]) {
    if (s.includes('\0')) throw new Error(`mount overlay on ${target}: NUL byte in ${JSON.stringify(s)}`);
  }
  if ((o.upper && !o.work) || (!o.upper && o.work)) throw new Error(`mount overlay on ${target}: upperdir and workdir go together`);
  const err = Buffer.alloc(1024);
  const opts = o.options ?? [];
  const r = fslib().mountOverlay(target, packStrings(o.lowers), o.lowers.length, o.upper ?? null, o.work ?? null,
    packStrings(opts.length ? opts : ['']), opts.length, o.readonly ? 1 : 0, err, err.length);
  if (r < 0) {
    const what = err.subarray(0, err.indexOf(0) < 0 ? err.length : err.indexOf(0)).toString();
    throw new FsError('mount overlay on', target, -r, `${what ? what + ': ' : ''}${strerror(-r)}`);
  }
}

/** flock(LOCK_EX) on an open fd, blocking until held. */
export function flockExclusive(fd: number, file: string): void {
  check(native().flock(fd), 'flock', file);
}

/** Run fn holding an exclusive flock on `file` (created if missing; the kernel drops it if we die). */
export function withFileLock<T>(file: string, fn: () => T): T {
  const fd = fs.openSync(file, 'a', 0o600);
  try {
    flockExclusive(fd, file);
    return fn();
  } finally {
    fs.closeSync(fd);
  }
}
