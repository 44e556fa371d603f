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
    if (expected) checkDigest(expected.digest);
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const tmp = path.join(this.dir, TMP_PREFIX + randomSuffix());
    const fh = await fs.promises.open(tmp, 'wx', 0o644);
    let open = true;
    const hash = crypto.createHash('sha256');
    let size = 0;
    try {
      for await (const c of src as AsyncIterable<unknown>) {
        const b = toBuffer(c);
        if (!b.length) continue;
        size += b.length;
        if (expected?.size !== undefined && size > expected.size) {
          throw new TsrunError(`digest mismatch for ${expected.digest}: got more than the expected ${expected.size} bytes`);
        }
        hash.update(b);
        let off = 0;
        while (off < b.length) off += (await fh.write(b, off, b.length - off)).bytesWritten;
        onBytes?.(b.length);
      }
      const digest = 'sha256:' + hash.digest('hex');
      if (expected && digest !== expected.digest) throw new TsrunError(`digest mismatch for ${expected.digest}: got ${digest}`);
      if (expected?.size !== undefined && size !== expected.size) {
        throw new TsrunError(`digest mismatch for ${expected.digest}: got ${size} bytes, expected ${expected.size}`);
      }
      await fh.sync();
      open = false;
      await fh.close();
      fs.renameSync(tmp, this.path(digest));
      return digest;
    } catch (e) {
      if (open) await fh.close().catch(() => undefined);
      fs.rmSync(tmp, { force: true });
      throw e;
    }
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
