// Small helpers shared by the stores.
import fs = require('fs');
import path = require('path');
import crypto = require('crypto');
import { TsrunError } from '../../runtime/errors';

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

/** "sha256:<64 hex>" or a clear error (also guards every path built from a digest). */
export function checkDigest(d: string, what = 'digest'): string {
  if (typeof d !== 'string' || !DIGEST_RE.test(d)) {
    if (typeof d === 'string' && /^[a-z0-9]+:/.test(d) && !d.startsWith('sha256:')) {
      throw new TsrunError(`unsupported ${what} algorithm: ${d}`);
    }
    throw new TsrunError(`invalid ${what} "${d}": expected sha256:<64 hex digits>`);
  }
  return d;
}

export const hexOf = (d: string): string => checkDigest(d).slice(7);

export function sha256(b: Buffer | string): string {
  return 'sha256:' + crypto.createHash('sha256').update(b).digest('hex');
}

export function randomSuffix(): string {
  return `${process.pid}-${crypto.randomBytes(6).toString('hex')}`;
}

export function toBuffer(c: unknown): Buffer {
  if (Buffer.isBuffer(c)) return c;
  if (c instanceof Uint8Array) return Buffer.from(c.buffer, c.byteOffset, c.byteLength);
  if (typeof c === 'string') return Buffer.from(c);
  throw new TsrunError(`unexpected chunk of type ${typeof c} in a byte stream`);
}

/** Any byte source as an async iterable of Buffers. */
export async function* chunks(src: AsyncIterable<unknown> | NodeJS.ReadableStream): AsyncGenerator<Buffer> {
  for await (const c of src as AsyncIterable<unknown>) {
    const b = toBuffer(c);
    if (b.length) yield b;
  }
}

/** Write a file atomically: temp file in the same dir, fsync, rename. */
export function writeFileAtomic(file: string, data: Buffer | string, mode = 0o644): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomSuffix()}`);
  const fd = fs.openSync(tmp, 'wx', mode);
  try {
    try {
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

export function errCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException)?.code;
}

/** lstat, or undefined when the path does not exist. */
export function lstatOrNull(p: string): fs.Stats | undefined {
  // throwIfNoEntry: most entries of a layer are new, and a thrown ENOENT costs a stack trace each
  return fs.lstatSync(p, { throwIfNoEntry: false });
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Mount points (this mount namespace) at or below dir. */
export function mountsUnder(dir: string): string[] {
  let real = dir;
  try { real = fs.realpathSync(dir); } catch { /* gone: compare as given */ }
  const prefix = real.endsWith('/') ? real : real + '/';
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean)
    .map((l) => unescapeMount(l.split(' ')[4]))
    .filter((m) => m === real || m.startsWith(prefix));
}

export function isMountPoint(dir: string): boolean {
  let real: string;
  try { real = fs.realpathSync(dir); } catch { return false; }
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l && unescapeMount(l.split(' ')[4]) === real);
}

/** A message for an unknown error value. */
export function msg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The "sha256:<hex>" names of the entries of dir that are named by a digest (blobs, layers). */
export function digestsIn(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => /^[0-9a-f]{64}$/.test(n)).map((n) => 'sha256:' + n);
}
