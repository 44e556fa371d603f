// The layer store: unpacked layers by chain id, <root>/image/layers/<chainId hex>/{diff/, layer.json}.
// A layer is unpacked into a private temp dir (<root>/image/tmp/unpack-*) and renamed into place
// with its layer.json, so a layer dir that exists is complete; two processes unpacking the same
// chain both succeed and one copy stays.
import fs = require('fs');
import path = require('path');
import crypto = require('crypto');
import zlib = require('zlib');
import { TsrunError } from '../../runtime/errors';
import { lgetxattr, llistxattr } from '../../kernel/fsops';
import { TarReader, TarFormatError, encodeHeader, padding, END_OF_ARCHIVE, type EntryType } from './tar';
import { LayerUnpacker, UnpackError } from './unpack';
import { checkDigest, hexOf, sha256, chunks, randomSuffix, errCode, msg, digestsIn } from './util';

export interface LayerMeta {
  chainId: string;
  diffId: string;
  parent: string | null;
  size: number;        // unpacked bytes (regular files)
  created: string;
}

export interface UnpackOptions {
  /** How errors name the layer ("layer <name>: ..."): e.g. the blob digest. Default: the expected diff id. */
  name?: string;
}

const GZ_CHUNK = 256 << 10; // 16 KiB output pieces cost a thread-pool round trip each; 1 MiB ones delay the overlap
const GZ_QUEUE = 8 << 20;

const isGzip = (b: Buffer) => b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
const isZstd = (b: Buffer) => b.length >= 4 && b.readUInt32LE(0) === 0xfd2fb528;
const isXz = (b: Buffer) => b.length >= 6 && b.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]));
const isBzip2 = (b: Buffer) => b.length >= 3 && b.subarray(0, 3).toString('latin1') === 'BZh';

async function drain(src: AsyncIterable<unknown> | NodeJS.ReadableStream): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  for await (const _ of src as AsyncIterable<unknown>) { /* discard */ }
}

export class LayerStore {
  readonly dir: string;
  readonly tmpDir: string;

  constructor(readonly root: string) {
    this.dir = path.join(root, 'image', 'layers');
    this.tmpDir = path.join(root, 'image', 'tmp');
  }

  /** OCI: chainID(L0) = diffID(L0); chainID(Ln) = sha256(chainID(Ln-1) + " " + diffID(Ln)). */
  static chainId(parent: string | undefined, diffId: string): string {
    checkDigest(diffId, 'diff id');
    if (!parent) return diffId;
    checkDigest(parent, 'chain id');
    return sha256(parent + ' ' + diffId);
  }

  private layerDir(chainId: string): string {
    return path.join(this.dir, hexOf(chainId));
  }

  has(chainId: string): boolean {
    return fs.existsSync(path.join(this.layerDir(chainId), 'layer.json'));
  }

  /** layer.json of the layer, or undefined when it is not here. */
  get(chainId: string): LayerMeta | undefined {
    try {
      return JSON.parse(fs.readFileSync(path.join(this.layerDir(chainId), 'layer.json'), 'utf8')) as LayerMeta;
    } catch (e) {
      if (errCode(e) === 'ENOENT') return undefined;
      throw new TsrunError(`layer ${chainId}: layer.json: ${msg(e)}`);
    }
  }

  /** Unpacked size of the layer (0 when it is not here). */
  size(chainId: string): number {
    return this.get(chainId)?.size ?? 0;
  }

  diffDir(chainId: string): string {
    return path.join(this.layerDir(chainId), 'diff');
  }

  /** Diff dirs from this layer down to the base, top first (overlayfs lowerdir order). */
  lowerDirs(chainId: string): string[] {
    const out: string[] = [];
    const seen = new Set<string>();
    let cur: string | null | undefined = chainId;
    while (cur) {
      if (seen.has(cur)) throw new TsrunError(`layer ${chainId}: its parent chain loops at ${cur}`);
      seen.add(cur);
      const meta = this.get(cur);
      if (!meta) {
        throw new TsrunError(cur === chainId ? `layer ${chainId} not found` : `layer ${chainId}: parent layer ${cur} not found`);
      }
      out.push(this.diffDir(cur));
      cur = meta.parent;
    }
    return out;
  }

  /**
   * Unpack one layer (tar, or tar+gzip by media type or magic) on top of parent, computing the
   * diff id (sha256 of the uncompressed tar) on the way. zstd, xz and bzip2 are refused.
   */
  async unpack(src: AsyncIterable<Buffer | Uint8Array> | NodeJS.ReadableStream, mediaType: string, parent: string | undefined,
    expectedDiffId?: string, opts: UnpackOptions = {}): Promise<{ chainId: string; diffId: string; size: number }> {
    const label = `layer ${opts.name ?? expectedDiffId ?? (parent ? `on ${parent}` : '(base)')}`;
    if (expectedDiffId) checkDigest(expectedDiffId, 'diff id');
    if (parent && !this.has(checkDigest(parent, 'chain id'))) throw new TsrunError(`${label}: parent layer ${parent} not found`);
    if (expectedDiffId) {
      const chainId = LayerStore.chainId(parent, expectedDiffId);
      const meta = this.get(chainId);
      if (meta) {
        await drain(src);
        return { chainId, diffId: expectedDiffId, size: meta.size };
      }
    }
    const w = this.writer(mediaType, label);
    try {
      for await (const c of chunks(src)) {
        const p = w.write(c);
        if (p) await p;
      }
      const { diffId, size } = await w.finish();
      if (expectedDiffId && diffId !== expectedDiffId) {
        throw new TsrunError(`${label}: diff id mismatch: expected ${expectedDiffId}, got ${diffId}`);
      }
      const chainId = LayerStore.chainId(parent, diffId);
      return { chainId, diffId, size: this.commit(w.tmp, { chainId, diffId, parent: parent ?? null, size }) };
    } catch (e) {
      w.abort();
      if (e instanceof TsrunError) throw e;
      throw new TsrunError(`${label}: ${msg(e)}`);
    }
  }

  /**
   * A layer being unpacked into a private temp dir (the push-style form of unpack): see
   * LayerWriter. Nothing is checked against a parent: layers are independent dirs, so they can
   * be unpacked in any order and committed (in chain order) once verified.
   */
  writer(mediaType: string, label: string): LayerWriter {
    if (/zstd/i.test(mediaType)) {
      throw new TsrunError(`${label}: zstd-compressed layers (${mediaType}) are not supported (Node 20 has no zstd)`);
    }
    fs.mkdirSync(this.tmpDir, { recursive: true, mode: 0o700 });
    const tmp = fs.mkdtempSync(path.join(this.tmpDir, 'unpack-'));
    return new LayerWriter(tmp, label);
  }

  /**
   * Moves an unpacked temp dir (from writer()) into place as layer meta.chainId; when that layer is
   * already here (unpacked concurrently by someone else), theirs stays and tmp is removed.
   * Returns the layer's unpacked size.
   */
  commit(tmp: string, m: { chainId: string; diffId: string; parent: string | null; size: number }): number {
    const meta: LayerMeta = { chainId: m.chainId, diffId: m.diffId, parent: m.parent, size: m.size, created: new Date().toISOString() };
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      fs.writeFileSync(path.join(tmp, 'layer.json'), JSON.stringify(meta, null, 2) + '\n', { mode: 0o644 });
      fs.renameSync(tmp, this.layerDir(m.chainId));
      return m.size;
    } catch (e) {
      const c = errCode(e);
      fs.rmSync(tmp, { recursive: true, force: true });
      if (c !== 'ENOTEMPTY' && c !== 'EEXIST') throw new TsrunError(`layer ${m.chainId}: ${msg(e)}`);
      return this.get(m.chainId)?.size ?? m.size;
    }
  }

  /** Remove a layer (atomically disappears first: renamed away, then deleted). */
  remove(chainId: string): void {
    const dir = this.layerDir(chainId);
    fs.mkdirSync(this.tmpDir, { recursive: true, mode: 0o700 });
    const away = path.join(this.tmpDir, `remove-${hexOf(chainId).slice(0, 12)}-${randomSuffix()}`);
    try {
      fs.renameSync(dir, away);
    } catch (e) {
      if (errCode(e) === 'ENOENT') return;
      throw new TsrunError(`remove layer ${chainId}: ${msg(e)}`);
    }
    fs.rmSync(away, { recursive: true, force: true });
  }

  list(): string[] {
    return digestsIn(this.dir);
  }

  /** Leftovers of unpacks and removals that died (older than maxAgeMs). */
  cleanTemp(maxAgeMs: number): number {
    let n = 0;
    let names: string[];
    try { names = fs.readdirSync(this.tmpDir); } catch { return 0; }
    for (const name of names) {
      if (!/^(unpack-|remove-|diff-)/.test(name)) continue;
      const p = path.join(this.tmpDir, name);
      try {
        if (Date.now() - fs.lstatSync(p).mtimeMs >= maxAgeMs) { fs.rmSync(p, { recursive: true, force: true }); n++; }
      } catch { /* raced */ }
    }
    return n;
  }

  /**
   * A container's upper dir as an OCI layer (uncompressed tar) in a temp file under
   * <root>/image/tmp: overlay whiteouts (0/0 char devices) become .wh.NAME, opaque dirs
   * (trusted.overlay.opaque=y or user.overlay.opaque=y) get .wh..wh..opq. The caller removes the file.
   */
  async diffToTar(upperDir: string): Promise<{ file: string; diffId: string; size: number }> {
    const st = fs.lstatSync(upperDir);
    if (!st.isDirectory()) throw new TsrunError(`diff ${upperDir}: not a directory`);
    fs.mkdirSync(this.tmpDir, { recursive: true, mode: 0o700 });
    const file = path.join(this.tmpDir, `diff-${randomSuffix()}.tar`);
    const fd = fs.openSync(file, 'wx', 0o600);
    const hash = crypto.createHash('sha256');
    let size = 0;
    const out = (b: Buffer) => {
      hash.update(b);
      let off = 0;
      while (off < b.length) off += fs.writeSync(fd, b, off, b.length - off);
      size += b.length;
    };
    const links = new Map<string, string>();
    const buf = Buffer.alloc(1 << 20);
    const walk = (rel: string) => {
      const names = fs.readdirSync(rel ? path.join(upperDir, rel) : upperDir).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      for (const name of names) {
        const r = rel ? `${rel}/${name}` : name;
        const p = path.join(upperDir, r);
        const s = fs.lstatSync(p, { bigint: true });
        const mode = Number(s.mode & 0o7777n);
        const base = { uid: Number(s.uid), gid: Number(s.gid), mtime: Number(s.mtimeMs / 1000n) };
        if (s.isCharacterDevice() && s.rdev === 0n) {
          out(encodeHeader({ path: rel ? `${rel}/.wh.${name}` : `.wh.${name}`, type: 'file', mode: 0o600, size: 0, ...base }));
          continue;
        }
        if (s.isSocket()) continue; // sockets are not archived
        const xattrs = new Map<string, Buffer>();
        for (const x of llistxattr(p)) {
          if (/^(trusted|user)\.overlay\./.test(x) || x === 'security.selinux') continue;
          const v = lgetxattr(p, x);
          if (v) xattrs.set(x, v);
        }
        if (s.isDirectory()) {
          out(encodeHeader({ path: r + '/', type: 'dir', mode, size: 0, xattrs, ...base }));
          const opq = (n: string) => lgetxattr(p, n)?.toString() === 'y';
          if (opq('trusted.overlay.opaque') || opq('user.overlay.opaque')) {
            out(encodeHeader({ path: `${r}/.wh..wh..opq`, type: 'file', mode: 0o600, size: 0, ...base }));
          }
          walk(r);
          continue;
        }
        if (s.nlink > 1n) {
          const key = `${s.dev}:${s.ino}`;
          const first = links.get(key);
          if (first !== undefined) {
            out(encodeHeader({ path: r, type: 'link', linkpath: first, mode, size: 0, ...base }));
            continue;
          }
          links.set(key, r);
        }
        if (s.isSymbolicLink()) {
          out(encodeHeader({ path: r, type: 'symlink', linkpath: fs.readlinkSync(p), mode, size: 0, xattrs, ...base }));
        } else if (s.isCharacterDevice() || s.isBlockDevice() || s.isFIFO()) {
          const rdev = s.rdev;
          const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
          const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
          const type: EntryType = s.isFIFO() ? 'fifo' : s.isCharacterDevice() ? 'char' : 'block';
          out(encodeHeader({ path: r, type, mode, size: 0, devmajor: s.isFIFO() ? 0 : major, devminor: s.isFIFO() ? 0 : minor, xattrs, ...base }));
        } else if (s.isFile()) {
          const len = Number(s.size);
          out(encodeHeader({ path: r, type: 'file', mode, size: len, xattrs, ...base }));
          const in_ = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
          try {
            let done = 0;
            while (done < len) {
              const n = fs.readSync(in_, buf, 0, Math.min(buf.length, len - done), null);
              if (n === 0) break;
              out(buf.subarray(0, n));
              done += n;
            }
            // a file that shrank while we read keeps the size its header announced
            if (done < len) out(Buffer.alloc(len - done));
          } finally {
            fs.closeSync(in_);
          }
          out(Buffer.alloc(padding(len)));
        }
      }
    };
    try {
      walk('');
      out(END_OF_ARCHIVE);
      fs.fsyncSync(fd);
    } catch (e) {
      fs.closeSync(fd);
      fs.rmSync(file, { force: true });
      throw new TsrunError(`diff ${upperDir}: ${msg(e)}`);
    }
    fs.closeSync(fd);
    return { file, diffId: 'sha256:' + hash.digest('hex'), size };
  }
}


/**
 * One layer being unpacked into `tmp`/diff: write() takes the blob's bytes as they come (gzip or
 * plain tar, told by the magic; zstd, xz and bzip2 are refused), finish() says the diff id and the
 * unpacked size, abort() removes the temp dir. write() returns a promise when the caller should
 * wait before the next chunk (the gunzip stream is full), else undefined. Decompression runs on
 * libuv's thread pool; hashing, tar parsing and the file system calls on the caller's thread.
 */
export class LayerWriter {
  private readonly hash = crypto.createHash('sha256');
  private readonly unpacker: LayerUnpacker;
  private readonly reader: TarReader;
  private head: Buffer[] | null = [];
  private headLen = 0;
  private gz?: zlib.Gunzip;
  private gzDone?: Promise<void>;
  private err?: Error;
  private closed = false;

  constructor(readonly tmp: string, private readonly label: string) {
    const diff = path.join(tmp, 'diff');
    try {
      fs.mkdirSync(diff, 0o755);
      fs.chmodSync(diff, 0o755);
    } catch (e) {
      fs.rmSync(tmp, { recursive: true, force: true });
      throw new TsrunError(`${label}: ${msg(e)}`);
    }
    this.unpacker = new LayerUnpacker(diff);
    this.reader = new TarReader(this.unpacker);
  }

  private wrap(e: unknown): Error {
    if (e instanceof TsrunError) return e;
    if (e instanceof UnpackError || e instanceof TarFormatError) return new TsrunError(`${this.label}: ${e.message}`);
    if (errCode(e) === 'Z_DATA_ERROR' || errCode(e) === 'Z_BUF_ERROR') return new TsrunError(`${this.label}: corrupt gzip stream: ${msg(e)}`);
    return new TsrunError(`${this.label}: ${msg(e)}`);
  }

  /** Uncompressed tar bytes. */
  private tar(c: Buffer): void {
    this.hash.update(c);
    this.reader.write(c);
  }

  private start(head: Buffer): void {
    if (isZstd(head)) throw new TsrunError(`${this.label}: the blob is zstd-compressed, which is not supported (Node 20 has no zstd)`);
    if (isXz(head) || isBzip2(head)) throw new TsrunError(`${this.label}: the blob is ${isXz(head) ? 'xz' : 'bzip2'}-compressed, which is not supported`);
    if (!isGzip(head)) return;
    const gz = zlib.createGunzip({ chunkSize: GZ_CHUNK });
    this.gz = gz;
    // Output is handled on the next turn of the event loop, not in the 'data' event: zlib starts
    // inflating the next piece on the thread pool when the event returns, so inflating and
    // unpacking overlap (they ran in turn: the busybox layer unpacked in 33 ms, now 27). At most
    // GZ_QUEUE bytes wait (the stream is paused beyond).
    let queue: Buffer[] = [];
    let queued = 0;
    let ended = false;
    let scheduled = false;
    let doneResolve!: () => void;
    const run = () => {
      scheduled = false;
      const q = queue;
      queue = [];
      queued = 0;
      if (!this.err) {
        try { for (const d of q) this.tar(d); } catch (e) { this.err = this.wrap(e); gz.destroy(); }
      }
      if (gz.isPaused()) gz.resume();
      if (ended) doneResolve();
    };
    gz.on('data', (d: Buffer) => {
      if (this.err) return;
      queue.push(d);
      queued += d.length;
      if (queued >= GZ_QUEUE) gz.pause();
      if (!scheduled) { scheduled = true; setImmediate(run); }
    });
    this.gzDone = new Promise<void>((resolve) => {
      doneResolve = resolve;
      gz.on('error', (e) => { this.err ??= this.wrap(e); resolve(); });
      gz.on('end', () => { ended = true; if (!scheduled) resolve(); });
      gz.on('close', () => { if (!scheduled) resolve(); });
    });
  }

  private feed(c: Buffer): Promise<void> | undefined {
    if (!this.gz) {
      this.tar(c);
      return undefined;
    }
    if (this.gz.write(c)) return undefined;
    const gz = this.gz;
    return new Promise<void>((resolve) => {
      const done = () => { gz.off('drain', done); gz.off('close', done); resolve(); };
      gz.on('drain', done);
      gz.on('close', done);
    }).then(() => { if (this.err) throw this.err; });
  }

  write(c: Buffer): Promise<void> | undefined {
    if (this.err) throw this.err;
    if (this.closed) throw new TsrunError(`${this.label}: write after the end`);
    try {
      if (this.head) {
        // the first 6 bytes tell the format
        this.head.push(c);
        this.headLen += c.length;
        if (this.headLen < 6) return undefined;
        const all = this.head.length === 1 ? this.head[0] : Buffer.concat(this.head, this.headLen);
        this.head = null;
        this.start(all);
        return this.feed(all);
      }
      return this.feed(c);
    } catch (e) {
      this.err = this.wrap(e);
      throw this.err;
    }
  }

  /** After the last byte: the diff id and the unpacked size (throws when the layer is not whole). */
  async finish(): Promise<{ diffId: string; size: number }> {
    if (this.err) throw this.err;
    try {
      if (this.head) {
        const all = Buffer.concat(this.head, this.headLen);
        this.head = null;
        this.start(all);
        const p = this.feed(all);
        if (p) await p;
      }
      this.closed = true;
      if (this.gz) {
        this.gz.end();
        await this.gzDone;
        if (this.err) throw this.err;
      }
      this.reader.finish();
      this.unpacker.finish();
    } catch (e) {
      this.err ??= this.wrap(e);
      throw this.err;
    }
    return { diffId: 'sha256:' + this.hash.digest('hex'), size: this.unpacker.size };
  }

  /** Gives up: the temp dir goes. */
  abort(): void {
    this.err ??= new TsrunError(`${this.label}: aborted`);
    this.closed = true;
    this.unpacker.abort();
    this.gz?.destroy();
    fs.rmSync(this.tmp, { recursive: true, force: true });
  }
}
