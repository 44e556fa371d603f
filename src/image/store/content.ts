// The content store: blobs (manifests, configs, layer tarballs) by digest,
// <root>/image/blobs/sha256/<hex>. A blob appears under its name only once its bytes have been
// hashed and checked (temp file in the same dir, fsync, rename), so a present blob is complete.
import fs = require('fs');
import path = require('path');
import crypto = require('crypto');
import { TsrunError } from '../../runtime/errors';
import { checkDigest, hexOf, randomSuffix, toBuffer, errCode, digestsIn } from './util';

const TMP_PREFIX = '.ingest-';

export class ContentStore {
  readonly dir: string;

  constructor(readonly root: string) {
    this.dir = path.join(root, 'image', 'blobs', 'sha256');
  }

  has(digest: string): boolean {
    try {
      return fs.statSync(this.path(digest)).isFile();
    } catch {
      return false;
    }
  }

  path(digest: string): string {
    return path.join(this.dir, hexOf(digest));
  }

  size(digest: string): number {
    try {
      return fs.statSync(this.path(digest)).size;
    } catch (e) {
      throw this.missing(digest, e);
    }
  }

  /** The blob's bytes, verified against the digest. */
  read(digest: string): Buffer {
    let buf: Buffer;
    try {
      buf = fs.readFileSync(this.path(digest));
    } catch (e) {
      throw this.missing(digest, e);
    }
    const got = 'sha256:' + crypto.createHash('sha256').update(buf).digest('hex');
    if (got !== digest) throw new TsrunError(`content ${digest} is corrupted: its bytes hash to ${got}`);
    return buf;
  }

  readJSON<T>(digest: string): T {
    const buf = this.read(digest);
    try {
      return JSON.parse(buf.toString('utf8')) as T;
    } catch (e) {
      throw new TsrunError(`content ${digest}: invalid JSON: ${(e as Error).message}`);
    }
  }

  /**
   * Stream bytes in, hashing while they arrive, into a temp file in the blobs dir; checked against
   * `expected` (digest and size), then renamed into place. On a mismatch nothing is left behind and
   * the error is "digest mismatch for <expected>: got <actual>". onBytes(n) is called with the
   * length of each chunk as it is written (a delta, not a running total).
   */
  async ingest(src: AsyncIterable<Buffer | Uint8Array> | NodeJS.ReadableStream, expected?: { digest: string; size?: number }, onBytes?: (n: number) => void): Promise<string> {
    const w = this.writer(expected);
    try {
      for await (const c of src as AsyncIterable<unknown>) {
        const b = toBuffer(c);
        if (!b.length) continue;
        w.write(b);
        onBytes?.(b.length);
      }
      return w.commit();
    } catch (e) {
      w.abort();
      throw e;
    }
  }

  /**
   * A blob being written (the push-style form of ingest): write() hashes and appends
   * (synchronously), commit() checks digest and size, fsyncs and renames into place, abort()
   * removes the temp file. After a failed commit nothing is left behind.
   */
  writer(expected?: { digest: string; size?: number }): BlobWriter {
    if (expected) checkDigest(expected.digest);
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    return new BlobWriter(this, path.join(this.dir, TMP_PREFIX + randomSuffix()), expected);
  }

  /** The synchronous variant for small blobs (manifests, configs). */
  put(buf: Buffer, expected?: { digest: string; size?: number }): string {
    const digest = 'sha256:' + crypto.createHash('sha256').update(buf).digest('hex');
    if (expected) {
      checkDigest(expected.digest);
      if (digest !== expected.digest) throw new TsrunError(`digest mismatch for ${expected.digest}: got ${digest}`);
      if (expected.size !== undefined && buf.length !== expected.size) {
        throw new TsrunError(`digest mismatch for ${expected.digest}: got ${buf.length} bytes, expected ${expected.size}`);
      }
    }
    const final = this.path(digest);
    if (fs.existsSync(final)) return digest;
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const tmp = path.join(this.dir, TMP_PREFIX + randomSuffix());
    try {
      const fd = fs.openSync(tmp, 'wx', 0o644);
      try {
        fs.writeFileSync(fd, buf);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, final);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw new TsrunError(`write ${final}: ${(e as Error).message}`);
    }
    return digest;
  }

  delete(digest: string): void {
    try {
      fs.unlinkSync(this.path(digest));
    } catch (e) {
      if (errCode(e) !== 'ENOENT') throw e;
    }
  }

  /** Digests of every complete blob. */
  list(): string[] {
    return digestsIn(this.dir);
  }

  /** Temp files of ingests that died (older than maxAgeMs): removed; returns how many. */
  cleanTemp(maxAgeMs: number): number {
    let n = 0;
    let names: string[];
    try { names = fs.readdirSync(this.dir); } catch { return 0; }
    for (const name of names) {
      if (!name.startsWith(TMP_PREFIX)) continue;
      const p = path.join(this.dir, name);
      try {
        if (Date.now() - fs.statSync(p).mtimeMs >= maxAgeMs) { fs.rmSync(p, { force: true }); n++; }
      } catch { /* raced */ }
    }
    return n;
  }

  private missing(digest: string, e: unknown): Error {
    if (errCode(e) === 'ENOENT') return new TsrunError(`content ${digest}: not found`);
    return new TsrunError(`content ${digest}: ${(e as Error).message}`);
  }
}

export class BlobWriter {
  private fd: number;
  private readonly hash = crypto.createHash('sha256');
  size = 0;

  constructor(private readonly store: ContentStore, readonly tmp: string, private readonly expected?: { digest: string; size?: number }) {
    this.fd = fs.openSync(tmp, 'wx', 0o644);
  }

  write(b: Buffer): void {
    const exp = this.expected;
    this.size += b.length;
    if (exp?.size !== undefined && this.size > exp.size) {
      throw new TsrunError(`digest mismatch for ${exp.digest}: got more than the expected ${exp.size} bytes`);
    }
    this.hash.update(b);
    let off = 0;
    while (off < b.length) off += fs.writeSync(this.fd, b, off, b.length - off);
  }

  /** Verifies, syncs and renames into place: the blob's digest. Throws (and cleans up) on a mismatch. */
  commit(): string {
    try {
      const exp = this.expected;
      const digest = 'sha256:' + this.hash.digest('hex');
      if (exp && digest !== exp.digest) throw new TsrunError(`digest mismatch for ${exp.digest}: got ${digest}`);
      if (exp?.size !== undefined && this.size !== exp.size) {
        throw new TsrunError(`digest mismatch for ${exp.digest}: got ${this.size} bytes, expected ${exp.size}`);
      }
      fs.fsyncSync(this.fd);
      fs.closeSync(this.fd);
      this.fd = -1;
      fs.renameSync(this.tmp, this.store.path(digest));
      return digest;
    } catch (e) {
      this.abort();
      throw e;
    }
  }

  abort(): void {
    if (this.fd >= 0) {
      try { fs.closeSync(this.fd); } catch { /* failing already */ }
      this.fd = -1;
    }
    fs.rmSync(this.tmp, { force: true });
  }
}
