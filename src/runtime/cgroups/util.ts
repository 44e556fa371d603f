// Small synchronous fs helpers for cgroupfs with errno-style error messages.

import fs = require('fs');

const STRERROR: Record<string, string> = {
  EPERM: 'Operation not permitted',
  ENOENT: 'No such file or directory',
  ESRCH: 'No such process',
  EINTR: 'Interrupted system call',
  EIO: 'Input/output error',
  ENXIO: 'No such device or address',
  E2BIG: 'Argument list too long',
  EBADF: 'Bad file descriptor',
  EAGAIN: 'Resource temporarily unavailable',
  ENOMEM: 'Cannot allocate memory',
  EACCES: 'Permission denied',
  EFAULT: 'Bad address',
  EBUSY: 'Device or resource busy',
  EEXIST: 'File exists',
  EXDEV: 'Invalid cross-device link',
  ENODEV: 'No such device',
  ENOTDIR: 'Not a directory',
  EISDIR: 'Is a directory',
  EINVAL: 'Invalid argument',
  ENFILE: 'Too many open files in system',
  EMFILE: 'Too many open files',
  EFBIG: 'File too large',
  ENOSPC: 'No space left on device',
  EROFS: 'Read-only file system',
  EMLINK: 'Too many links',
  ERANGE: 'Numerical result out of range',
  ENAMETOOLONG: 'File name too long',
  ENOTEMPTY: 'Directory not empty',
  ELOOP: 'Too many levels of symbolic links',
  EOPNOTSUPP: 'Operation not supported',
  ENOTSUP: 'Operation not supported',
  EOVERFLOW: 'Value too large for defined data type',
  ECANCELED: 'Operation canceled',
};

/** Error thrown by every failing cgroup file operation. `message` is "<op> <path>: <strerror>". */
export class CgroupError extends Error {
  readonly code: string | undefined;
  readonly op: string;
  readonly path: string;
  /** The value that was being written, if any. */
  readonly value: string | undefined;
  constructor(op: string, path: string, code: string | undefined, reason: string, value?: string) {
    super(`${op} ${path}: ${reason}`);
    this.name = 'CgroupError';
    this.code = code;
    this.op = op;
    this.path = path;
    this.value = value;
  }
}

export function errCode(err: unknown): string | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}

export function strerror(err: unknown): string {
  const code = errCode(err);
  if (code && STRERROR[code]) return STRERROR[code];
  if (code) return code;
  return err instanceof Error ? err.message : String(err);
}

export function sysError(op: string, path: string, err: unknown, value?: string, hint?: string): CgroupError {
  const reason = strerror(err) + (hint ? ` (${hint})` : '');
  return new CgroupError(op, path, errCode(err), reason, value);
}

/**
 * Write `data` to an existing cgroup control file with a single write(2).
 * Opened O_WRONLY without O_CREAT/O_TRUNC: kernfs cannot create files (O_CREAT would turn
 * a missing file into EACCES) and some files (cgroup.kill) are write-only.
 */
export function writeFile(path: string, data: string, hint?: (code: string | undefined) => string | undefined): void {
  let fd: number;
  try {
    fd = fs.openSync(path, fs.constants.O_WRONLY);
  } catch (err) {
    throw sysError('write', path, err, data, hint?.(errCode(err)));
  }
  try {
    const buf = Buffer.from(data);
    const n = fs.writeSync(fd, buf, 0, buf.length);
    if (n !== buf.length) throw Object.assign(new Error('short write'), { code: 'EIO' });
  } catch (err) {
    throw sysError('write', path, err, data, hint?.(errCode(err)));
  } finally {
    try { fs.closeSync(fd); } catch { /* ignore */ }
  }
}

export function readFile(path: string): string {
  try {
    return fs.readFileSync(path, 'utf8');
  } catch (err) {
    throw sysError('read', path, err);
  }
}

/** Read a file; undefined when it cannot be read (missing file, controller absent...). */
export function tryRead(path: string): string | undefined {
  try {
    return fs.readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

export function exists(path: string): boolean {
  try {
    fs.accessSync(path, fs.constants.F_OK);
    return true;
  } catch {
    return false;
  }
}

/** mkdir one level; true if created now, false if it already existed. */
export function mkdirOne(path: string): boolean {
  try {
    fs.mkdirSync(path, 0o755);
    return true;
  } catch (err) {
    if (errCode(err) === 'EEXIST') return false;
    throw sysError('mkdir', path, err);
  }
}

let sleepCell: Int32Array | undefined;
/** Blocking sleep without spinning. */
export function sleepMs(ms: number): void {
  if (!sleepCell) sleepCell = new Int32Array(new SharedArrayBuffer(4));
  Atomics.wait(sleepCell, 0, 0, ms);
}

/** Format an integer without exponent notation. */
export function intStr(n: number): string {
  if (!Number.isFinite(n)) throw new Error(`invalid number ${n}`);
  return BigInt(Math.trunc(n)).toString();
}

/** Parse "key value" lines (memory.stat, cpu.stat, memory.events, ...). */
export function parseKeyValues(text: string | undefined): Record<string, number> | undefined {
  if (text === undefined) return undefined;
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const sp = line.trim().split(/\s+/);
    if (sp.length !== 2) continue;
    const v = Number(sp[1]);
    if (Number.isFinite(v)) out[sp[0]] = v;
  }
  return out;
}

export const MAX_UINT64 = 18446744073709551615; // rounded to 2^64 as a double; used for "max"

/** Parse a single-value cgroup file: number, "max" -> MAX_UINT64; undefined if missing/unparsable. */
export function readUint(path: string): number | undefined {
  const t = tryRead(path);
  if (t === undefined) return undefined;
  const s = t.trim();
  if (s === 'max') return MAX_UINT64;
  if (s === '') return undefined;
  const v = Number(s);
  return Number.isFinite(v) ? v : undefined;
}
