// The image records: <root>/image/images.json, rewritten atomically (temp file + rename) under an
// exclusive flock on <root>/image/lock. Readers need no lock (a rename is atomic).
import fs = require('fs');
import path = require('path');
import { TsrunError } from '../../runtime/errors';
import { flockExclusive } from '../../kernel/fsops';
import type { ImageRecord } from '../types';
import { ContentStore } from './content';
import { LayerStore } from './layers';
import { checkDigest, errCode, writeFileAtomic, msg } from './util';

interface ImagesFile {
  schemaVersion: 1;
  images: ImageRecord[];
}

// One lock per lock file per process, shared by every ImageStore on the same root: flock is per
// open file description, so a second descriptor in the same process would deadlock on the first.
const held = new Map<string, { fd: number; depth: number }>();

export interface GcOptions {
  /** Keep blobs and layers younger than this (ms): protects the work of a pull that has not yet recorded its image. Default 0. */
  minAgeMs?: number;
}

export class ImageStore {
  readonly dir: string;
  readonly content: ContentStore;
  readonly layers: LayerStore;
  private readonly file: string;
  private readonly lockFile: string;

  constructor(readonly root: string) {
    this.dir = path.join(root, 'image');
    this.file = path.join(this.dir, 'images.json');
    this.lockFile = path.join(this.dir, 'lock');
    this.content = new ContentStore(root);
    this.layers = new LayerStore(root);
  }

  list(): ImageRecord[] {
    return this.load().images;
  }

  /**
   * By full id, unique short id (a prefix of the hex, with or without "sha256:"), normalised
   * reference (repo tag) or repo digest. An ambiguous short id finds nothing (undefined).
   */
  find(key: string): ImageRecord | undefined {
    if (!key) return undefined;
    return this.findIn(this.list(), key);
  }

  /** Store a record, or merge it into the one with the same id (union of tags and digests); its tags move here. */
  put(rec: ImageRecord): void {
    checkDigest(rec.id, 'image id');
    this.withLock(() => {
      const f = this.load();
      const old = f.images.find((r) => r.id === rec.id);
      const merged: ImageRecord = old
        ? { ...old, ...rec, repoTags: union(old.repoTags, rec.repoTags), repoDigests: union(old.repoDigests, rec.repoDigests) }
        : { ...rec, repoTags: union([], rec.repoTags), repoDigests: union([], rec.repoDigests) };
      const images = f.images.filter((r) => r.id !== rec.id).map((r) => ({ ...r, repoTags: r.repoTags.filter((t) => !merged.repoTags.includes(t)) }));
      if (old) images.splice(f.images.indexOf(old), 0, merged);
      else images.push(merged);
      this.save({ schemaVersion: 1, images });
    });
  }

  /** Add a reference to an image (by id, short id, or anything find() takes); the tag leaves any other image. */
  tag(id: string, ref: string): void {
    if (!ref) throw new TsrunError('tag: empty reference');
    this.withLock(() => {
      const f = this.load();
      const target = this.findIn(f.images, id);
      if (!target) throw new TsrunError(`No such image: ${id}`);
      for (const r of f.images) {
        if (r === target) { if (!r.repoTags.includes(ref)) r.repoTags.push(ref); } else r.repoTags = r.repoTags.filter((t) => t !== ref);
      }
      this.save(f);
    });
  }

  /** Remove a reference (a tag, or a repo digest); returns the image that had it, as it is now. */
  untag(ref: string): ImageRecord | undefined {
    return this.withLock(() => {
      const f = this.load();
      const rec = f.images.find((r) => r.repoTags.includes(ref) || r.repoDigests.includes(ref));
      if (!rec) return undefined;
      rec.repoTags = rec.repoTags.filter((t) => t !== ref);
      rec.repoDigests = rec.repoDigests.filter((d) => d !== ref);
      this.save(f);
      return rec;
    });
  }

  /** Remove the record (not its blobs or layers: see gc). */
  remove(id: string): void {
    this.withLock(() => {
      const f = this.load();
      const images = f.images.filter((r) => r.id !== id);
      if (images.length !== f.images.length) this.save({ schemaVersion: 1, images });
    });
  }

  /**
   * Delete the layers and blobs that no image record references and no container snapshot uses
   * (`inUse`: chain ids; their parents are kept too).
   */
  gc(inUse: Set<string> = new Set(), opts: GcOptions = {}): { layers: number; blobs: number; bytes: number } {
    return this.withLock(() => {
      const minAge = opts.minAgeMs ?? 0;
      const young = (p: string) => {
        if (minAge <= 0) return false;
        try { return Date.now() - fs.statSync(p).mtimeMs < minAge; } catch { return false; }
      };
      const keepChains = new Set<string>();
      const keepBlobs = new Set<string>();
      const keepChain = (c: string | null | undefined) => {
        while (c && !keepChains.has(c)) {
          keepChains.add(c);
          let meta;
          try { meta = this.layers.get(c); } catch { meta = undefined; }
          c = meta?.parent;
        }
      };
      for (const r of this.list()) {
        keepBlobs.add(r.id);
        keepBlobs.add(r.manifestDigest);
        for (const l of r.layers) {
          keepBlobs.add(l.blobDigest);
          keepChain(l.chainId);
        }
      }
      for (const c of inUse) keepChain(c);
      let layers = 0;
      let blobs = 0;
      let bytes = 0;
      for (const c of this.layers.list()) {
        if (keepChains.has(c) || young(path.dirname(this.layers.diffDir(c)))) continue;
        const size = this.layers.size(c);
        this.layers.remove(c);
        layers++;
        bytes += size;
      }
      for (const d of this.content.list()) {
        if (keepBlobs.has(d) || young(this.content.path(d))) continue;
        let size = 0;
        try { size = this.content.size(d); } catch { continue; }
        this.content.delete(d);
        blobs++;
        bytes += size;
      }
      // what dead processes left: temp files of ingests, unpack and removal dirs (an hour old)
      this.content.cleanTemp(3600_000);
      this.layers.cleanTemp(3600_000);
      return { layers, blobs, bytes };
    });
  }

  /**
   * Run fn holding the exclusive lock on <root>/image/lock (flock). Re-entrant within the process.
   * When fn returns a promise, the lock is held until it settles.
   */
  withLock<T>(fn: () => T): T {
    const h = held.get(this.lockFile);
    if (h) h.depth++;
    else {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      let fd: number;
      try {
        fd = fs.openSync(this.lockFile, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
      } catch (e) {
        throw new TsrunError(`open ${this.lockFile}: ${msg(e)}`);
      }
      try {
        flockExclusive(fd, this.lockFile);
      } catch (e) {
        fs.closeSync(fd);
        throw e;
      }
      held.set(this.lockFile, { fd, depth: 1 });
    }
    let async = false;
    try {
      const r = fn();
      if (isThenable(r)) {
        async = true;
        return Promise.resolve(r).finally(() => this.release()) as T;
      }
      return r;
    } finally {
      if (!async) this.release();
    }
  }

  private release(): void {
    const h = held.get(this.lockFile);
    if (!h) return;
    if (--h.depth > 0) return;
    held.delete(this.lockFile);
    fs.closeSync(h.fd);
  }

  private findIn(images: ImageRecord[], key: string): ImageRecord | undefined {
    const exact = images.find((r) => r.id === key) ?? images.find((r) => r.repoTags.includes(key)) ?? images.find((r) => r.repoDigests.includes(key));
    if (exact) return exact;
    const m = /^(?:sha256:)?([0-9a-f]{1,64})$/.exec(key);
    if (!m) return undefined;
    const hits = images.filter((r) => r.id.startsWith('sha256:' + m[1]));
    return hits.length === 1 ? hits[0] : undefined;
  }

  private load(): ImagesFile {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (e) {
      if (errCode(e) === 'ENOENT') return { schemaVersion: 1, images: [] };
      throw new TsrunError(`read ${this.file}: ${msg(e)}`);
    }
    try {
      const f = JSON.parse(text) as ImagesFile;
      if (!f || !Array.isArray(f.images)) throw new Error('no "images" list');
      return f;
    } catch (e) {
      throw new TsrunError(`${this.file}: invalid: ${msg(e)}`);
    }
  }

  private save(f: ImagesFile): void {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeFileAtomic(this.file, JSON.stringify(f, null, 2) + '\n', 0o600);
  }
}

function union(a: string[], b: string[]): string[] {
  return [...new Set([...a, ...b])];
}

function isThenable(x: unknown): x is PromiseLike<unknown> {
  return !!x && (typeof x === 'object' || typeof x === 'function') && typeof (x as PromiseLike<unknown>).then === 'function';
}
