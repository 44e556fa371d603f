// pullImage: resolve a reference on its registry, download the layers in parallel into the
// content store (digests verified while streaming) and unpack them into the layer store.
//
// Scheduling. Layer downloads start as soon as the manifest is here (the config is fetched
// alongside), `concurrency` at a time (default 3, docker's max-concurrent-downloads), in
// layer order. Unpacking is sequential by chain (a layer is unpacked on top of its parent
// chain), so one layer at a time is the "head", and the unpacker takes its bytes from
// wherever they are at that moment:
//  - live: each download keeps what it has received in memory (up to 64 MiB) until its
//    layer becomes the head; the unpacker then attaches to the download, replays that and
//    follows the rest as it arrives. So the first layer is unpacked while it downloads, and
//    so is every later layer whose download is still running (or not yet started) when its
//    parent is done: the unpacker never waits for a download to finish and never reads a
//    blob back. A follower that falls behind slows its own download (backpressure), never
//    the others;
//  - from the content store: a layer whose download finished before it became the head,
//    or whose in-memory copy grew past the cap, is unpacked from its stored blob (just
//    written, so read from the page cache).
// Wall time is then about max(downloads / width, sum of unpacks) plus the first layer's
// head start, rather than their sum; on a small machine both share the CPU.
import fs = require('fs');
import { PassThrough, Readable } from 'stream';
import type { Descriptor, ImageConfig, ImageRecord, ImageRef, Index, LayerRecord, Manifest, Progress } from './types';
import { MT } from './types';
import { familiarRef, formatRef, repoName } from './ref';
import { ImageStore, LayerStore } from './store';
import { RegistryClient, sleep } from './registry/client';
import { DigestMismatchError, errorText, isRetryable, RegistryError } from './registry/errors';
import { TsrunError } from '../runtime/errors';
import { formatPlatform, hostPlatform, normalisePlatform, parsePlatform, selectManifest } from './registry/platform';
import { recordBlobSource } from './registry/sources';
import { trace } from '../runtime/trace';

export interface PullOptions {
  /** "os/arch[/variant]"; default: the host's. */
  platform?: string;
  progress?: Progress;
  /** Parallel layer downloads (default 3). */
  concurrency?: number;
  /** A client to use (tests, or a caller that already logged in); default: one for ref.domain. */
  client?: RegistryClient;
  /** Bytes a download keeps in memory for a later live unpack (default 64 MiB; 0: unpack
   *  layers that were not the head when their download started from the stored blob). */
  replayCap?: number;
}

const LAYER_TYPES = new Set<string>([MT.OCI_LAYER, MT.OCI_LAYER_GZIP, MT.OCI_LAYER_ZSTD, MT.DOCKER_LAYER_GZIP, MT.DOCKER_LAYER_FOREIGN]);
const TRIES = 3;
const PROGRESS_MS = 100;

const isIndex = (mt: string) => mt === MT.OCI_INDEX || mt === MT.DOCKER_LIST;

export function shortId(digest: string): string {
  return digest.slice(digest.indexOf(':') + 1, digest.indexOf(':') + 13);
}

class Deferred<T> {
  promise: Promise<T>;
  resolve!: (v: T) => void;
  reject!: (e: unknown) => void;
  settled = false;
  constructor() {
    this.promise = new Promise<T>((res, rej) => { this.resolve = (v) => { this.settled = true; res(v); }; this.reject = (e) => { this.settled = true; rej(e); }; });
    this.promise.catch(() => { /* observed elsewhere */ });
  }
}

const REPLAY_CAP = 64 << 20;
const COALESCE = 1 << 20;

/**
 * One download attempt's bytes, fanned out: `main` (to content.ingest) gets everything; until
 * a follower attaches, the bytes are also kept (up to REPLAY_CAP) so that a follower can
 * start from the beginning at any time; after that it gets them live, with backpressure.
 * Chunks are coalesced to ~1 MiB: network chunks are 16-64 KiB, and the consumers make one
 * write syscall (and one thread-pool round trip) per chunk.
 */
class Fanout {
  readonly main = new PassThrough({ highWaterMark: 4 << 20 });
  private follower?: PassThrough;
  private kept: Buffer[] | null = [];
  private keptLen = 0;
  private pending: Buffer[] = [];
  private pendingLen = 0;
  private waiting = 0;
  private ended = false;
  private failed?: Error;

  constructor(private readonly src: Readable, onChunk: (n: number) => void, private readonly cap = REPLAY_CAP) {
    // Consumers see errors through their iterators; these keep a late one from being uncaught.
    this.main.on('error', () => { /* seen by the consumer */ });
    src.on('data', (c: Buffer) => {
      onChunk(c.length);
      this.pending.push(c);
      this.pendingLen += c.length;
      if (this.pendingLen >= COALESCE) this.flush();
    });
    src.on('end', () => {
      this.flush();
      this.ended = true;
      this.main.end();
      this.follower?.end();
    });
    src.on('error', (e) => this.abort(e));
    src.on('close', () => {
      if (!this.ended) this.abort(Object.assign(new Error('connection closed before the end of the blob (aborted)'), { code: 'ECONNRESET' }));
    });
  }

  private readonly resume = () => { if (--this.waiting === 0) this.src.resume(); };

  private flush(): void {
    if (!this.pendingLen) return;
    const c = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingLen);
    this.pending = [];
    this.pendingLen = 0;
    const okMain = this.main.write(c);
    let okF = true;
    if (this.follower) okF = this.follower.write(c);
    else if (this.kept) {
      this.kept.push(c);
      this.keptLen += c.length;
      if (this.keptLen > this.cap) { this.kept = null; this.keptLen = 0; }
    }
    if (!okMain || !okF) {
      this.src.pause();
      if (!okMain) { this.waiting++; this.main.once('drain', this.resume); }
      if (!okF) { this.waiting++; this.follower!.once('drain', this.resume); }
    }
  }

  /** Whether a follower can still attach (it has every byte from the start). */
  get attachable(): boolean {
    return !this.follower && this.kept !== null && !this.failed;
  }

  /** A stream of the whole blob: what was received so far, then the rest as it comes. */
  attach(): PassThrough {
    const f = new PassThrough({ highWaterMark: 4 << 20 });
    f.on('error', () => { /* seen by the consumer */ });
    for (const c of this.kept ?? []) f.write(c);
    this.kept = null;
    this.keptLen = 0;
    this.follower = f;
    if (this.ended) f.end();
    return f;
  }

  /** The follower gave up: the download goes on without it. */
  detach(): void {
    const f = this.follower;
    if (!f) return;
    this.follower = undefined;
    if (f.writableNeedDrain && this.waiting > 0) { f.removeListener('drain', this.resume); this.resume(); }
    f.destroy();
  }

  abort(e: Error): void {
    if (this.failed) return;
    this.failed = e;
    this.kept = null;
    this.src.destroy(e);
    this.main.destroy(e);
    this.follower?.destroy(e);
  }
}

/** Counts bytes as they pass, handing them on in pieces of about COALESCE bytes. */
async function* counted(src: AsyncIterable<Buffer>, onChunk: (n: number) => void): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let len = 0;
  for await (const c of src) {
    onChunk(c.length);
    pending.push(c);
    len += c.length;
    if (len >= COALESCE) {
      yield pending.length === 1 ? pending[0] : Buffer.concat(pending, len);
      pending = [];
      len = 0;
    }
  }
  if (len) yield pending.length === 1 ? pending[0] : Buffer.concat(pending, len);
}

interface UnpackResult { chainId: string; diffId: string; size: number }

interface LayerJob {
  i: number;
  desc: Descriptor;
  id: string;                 // short id for progress
  needBlob: boolean;          // not in the content store
  diffId?: string;            // from the config (known once it is here)
  chainId?: string;
  parent?: string;
  needUnpack?: boolean;
  fan?: Fanout;               // the download attempt in flight
  downloaded: boolean;
  blobDone: Deferred<void>;
  wake?: () => void;          // the unpacker waits for this layer's bytes
  size: number;               // unpacked size
  unpacked?: boolean;
}

function parseJSON<T>(buf: Buffer, what: string): T {
  try { return JSON.parse(buf.toString('utf8')) as T; } catch { throw new RegistryError(`${what}: invalid JSON`); }
}

/** Pulls `ref` into the store and returns its record. Errors: "pull busybox:latest: <why>". */
export async function pullImage(store: ImageStore, ref: ImageRef, opts: PullOptions = {}): Promise<ImageRecord> {
  try {
    return await pull(store, ref, opts);
  } catch (e) {
    const err = e as RegistryError;
    throw new RegistryError(`pull ${familiarRef(ref)}: ${errorText(e)}`, err?.status, err?.code);
  }
}

async function pull(store: ImageStore, ref: ImageRef, opts: PullOptions): Promise<ImageRecord> {
  const progress: Progress = opts.progress ?? (() => { /* none */ });
  const client = opts.client ?? new RegistryClient(ref.domain);
  const repo = ref.path;
  const reference = ref.digest ?? ref.tag ?? 'latest';
  const wanted = opts.platform ? parsePlatform(opts.platform) : undefined;

  progress({ kind: 'resolve', ref: familiarRef(ref) });
  trace('pull: start');
  const top = await client.getManifest(repo, reference);
  trace('pull: manifest');
  let m = top;
  if (isIndex(top.mediaType)) {
    const index = parseJSON<Index>(top.bytes, 'manifest list');
    if (!Array.isArray(index.manifests)) throw new RegistryError('manifest list: no manifests');
    const entries = index.manifests.filter((d) => !d.mediaType || d.mediaType === MT.OCI_MANIFEST || d.mediaType === MT.DOCKER_MANIFEST);
    const pick = selectManifest(entries, wanted ?? hostPlatform());
    m = await client.getManifest(repo, pick.digest);
    if (isIndex(m.mediaType)) throw new RegistryError(`manifest ${pick.digest}: nested manifest lists are not supported`);
  }
  const manifest = parseJSON<Manifest>(m.bytes, 'manifest');
  if (!manifest.config?.digest || !Array.isArray(manifest.layers)) throw new RegistryError(`manifest ${m.digest}: no config or layers`);
  for (const l of manifest.layers) {
    if (!LAYER_TYPES.has(l.mediaType)) throw new RegistryError(`unsupported layer media type "${l.mediaType}"`);
    if (typeof l.digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(l.digest)) throw new RegistryError(`layer with an invalid digest "${l.digest}"`);
  }
  const jobs: LayerJob[] = manifest.layers.map((desc, i) => ({
    i, desc, id: shortId(desc.digest), needBlob: !store.content.has(desc.digest), downloaded: false, blobDone: new Deferred<void>(), size: 0,
  }));

  // The config (from the content store when we have it, else fetched and verified; stored at
  // the end) gives the diff ids: the unpacker needs them, the downloads do not wait for it.
  const cfgDigest = manifest.config.digest;
  const getConfig = async (): Promise<{ bytes: Buffer; config: ImageConfig }> => {
    const bytes = store.content.has(cfgDigest) ? store.content.read(cfgDigest) : await client.getBlobBytes(repo, cfgDigest);
    trace('pull: config');
    const config = parseJSON<ImageConfig>(bytes, `config ${cfgDigest}`);
    const diffIds = config.rootfs?.diff_ids;
    if (!Array.isArray(diffIds) || diffIds.length !== jobs.length) {
      throw new RegistryError(`config ${shortId(cfgDigest)}: ${Array.isArray(diffIds) ? diffIds.length : 0} diff_ids for ${jobs.length} layers`);
    }
    if (wanted) {
      const got = normalisePlatform({ os: config.os, architecture: config.architecture, variant: config.variant });
      if (got.os !== wanted.os || got.architecture !== wanted.architecture) {
        throw new RegistryError(`image with reference ${familiarRef(ref)} was found but does not match the specified platform: wanted ${formatPlatform(wanted)}, actual: ${formatPlatform(got)}`);
      }
    }
    let parent: string | undefined;
    for (const j of jobs) {
      j.diffId = diffIds[j.i];
      j.parent = parent;
      j.chainId = LayerStore.chainId(parent, diffIds[j.i]);
      j.needUnpack = !store.layers.has(j.chainId);
      parent = j.chainId;
    }
    return { bytes, config };
  };
  const { bytes: cfgBytes, config } = await fetchLayers(store, client, repo, jobs, getConfig, progress, opts.concurrency ?? 3, opts.replayCap ?? REPLAY_CAP);

  // Record: manifest (and index) and config blobs, then the image (put merges tags and digests
  // into a record with the same id and moves the tags here).
  trace('pull: layers done');
  const layers: LayerRecord[] = jobs.map((j) => ({ chainId: j.chainId!, diffId: j.diffId!, blobDigest: j.desc.digest, mediaType: j.desc.mediaType, size: j.desc.size }));
  const rec: ImageRecord = {
    id: cfgDigest,
    repoTags: ref.digest === undefined ? [formatRef({ domain: ref.domain, path: ref.path, tag: ref.tag ?? 'latest' })] : [],
    repoDigests: [`${repoName(ref)}@${top.digest}`],
    manifestDigest: m.digest,
    manifestMediaType: m.mediaType,
    layers,
    created: typeof config.created === 'string' && config.created ? config.created : new Date().toISOString(),
    size: jobs.reduce((n, j) => n + j.size, 0),
  };
  if (!store.content.has(cfgDigest)) store.content.put(cfgBytes, { digest: cfgDigest, size: cfgBytes.length });
  if (!store.content.has(m.digest)) store.content.put(m.bytes, { digest: m.digest, size: m.bytes.length });
  if (top !== m && !store.content.has(top.digest)) store.content.put(top.bytes, { digest: top.digest, size: top.bytes.length });
  store.withLock(() => store.put(rec));
  for (const d of [cfgDigest, ...jobs.map((j) => j.desc.digest)]) recordBlobSource(ref.domain, ref.path, d);
  trace('pull: recorded');
  progress({ kind: 'digest', digest: top.digest });
  return store.find(rec.id) ?? rec;
}

/**
 * Downloads the missing blobs (in parallel, from the start) and unpacks the missing layers
 * (in chain order, once the config is here). Returns the config.
 */
async function fetchLayers<C>(store: ImageStore, client: RegistryClient, repo: string, jobs: LayerJob[],
  getConfig: () => Promise<C>, progress: Progress, concurrency: number, replayCap: number): Promise<C> {
  const content = store.content;
  const layerStore = store.layers;
  let failed: unknown;
  const fail = (e: unknown) => {
    if (failed !== undefined) return;
    failed = e;
    const err = e instanceof Error ? e : new Error(String(e));
    for (const j of jobs) { j.fan?.abort(err); j.wake?.(); }
  };

  // A blob that appears twice (Docker's empty layer, say) is downloaded once.
  const first = new Map<string, LayerJob>();
  for (const j of jobs) {
    const f = first.get(j.desc.digest);
    if (!j.needBlob) { j.downloaded = true; j.blobDone.resolve(); continue; }
    if (!f) { first.set(j.desc.digest, j); progress({ kind: 'layer', id: j.id, status: 'waiting' }); continue; }
    j.needBlob = false;
    f.blobDone.promise.then(() => { j.downloaded = true; j.blobDone.resolve(); j.wake?.(); }, (e) => { j.blobDone.reject(e); j.wake?.(); });
  }

  const download = async (j: LayerJob) => {
    const total = j.desc.size;
    for (let attempt = 1; ; attempt++) {
      if (failed !== undefined) throw failed;
      let got = 0;
      let lastEmit = 0;
      const onChunk = (n: number) => {
        got += n;
        const now = Date.now();
        if (now - lastEmit >= PROGRESS_MS || got === total) { lastEmit = now; progress({ kind: 'layer', id: j.id, status: 'downloading', current: got, total }); }
      };
      let fan: Fanout | undefined;
      try {
        const { stream } = await client.getBlob(repo, j.desc.digest);
        if (failed !== undefined) { stream.destroy(); throw failed; }
        fan = new Fanout(stream, onChunk, replayCap);
        j.fan = fan;
        j.wake?.();
        trace('pull: blob response');
        await content.ingest(fan.main, { digest: j.desc.digest, size: j.desc.size });
        trace('pull: blob ingested');
        j.fan = undefined;
        j.downloaded = true;
        if (j.needUnpack !== false) progress({ kind: 'layer', id: j.id, status: 'verifying' });
        j.blobDone.resolve();
        j.wake?.();
        return;
      } catch (e) {
        fan?.abort(e instanceof Error ? e : new Error(String(e)));
        j.fan = undefined;
        if (failed !== undefined || attempt >= TRIES || !isRetryable(e)) {
          // Store errors already say which blob or layer; network errors get the layer's id.
          throw e instanceof TsrunError ? e : new RegistryError(`layer ${j.id}: ${errorText(e)}`);
        }
        progress({ kind: 'layer', id: j.id, status: 'waiting' });
        await sleep(250 * 2 ** (attempt - 1));
      }
    }
  };

  // The download pool: layers in order, `concurrency` at a time.
  const queue = jobs.filter((j) => j.needBlob);
  const worker = async () => {
    for (;;) {
      const j = queue.shift();
      if (!j || failed !== undefined) return;
      try { await download(j); } catch (e) { j.blobDone.reject(e); fail(e); j.wake?.(); return; }
    }
  };

  /** Unpacks from `src`, checking the result; on failure the caller decides what next. */
  const unpack = async (j: LayerJob, src: AsyncIterable<Buffer> | Readable): Promise<void> => {
    const r: UnpackResult = await layerStore.unpack(src, j.desc.mediaType, j.parent, j.diffId, { name: j.id });
    if (r.diffId !== j.diffId) throw new DigestMismatchError(`layer ${j.id}: diff id`, j.diffId!, r.diffId);
    if (r.chainId !== j.chainId) throw new RegistryError(`layer ${j.id}: chain id ${r.chainId}, expected ${j.chainId}`);
    j.size = r.size;
    j.unpacked = true;
  };

  const fromFile = async (j: LayerJob): Promise<void> => {
    const total = content.size(j.desc.digest);
    let done = 0;
    let lastEmit = 0;
    progress({ kind: 'layer', id: j.id, status: 'extracting', current: 0, total });
    const file = fs.createReadStream(content.path(j.desc.digest), { highWaterMark: COALESCE });
    await unpack(j, counted(file as AsyncIterable<Buffer>, (n) => {
      done += n;
      const now = Date.now();
      if (now - lastEmit >= PROGRESS_MS) { lastEmit = now; progress({ kind: 'layer', id: j.id, status: 'extracting', current: done, total }); }
    }));
  };

  // The unpacker: one layer at a time, in chain order.
  const unpacker = async () => {
    for (const j of jobs) {
      if (failed !== undefined) return;
      if (!j.needUnpack) {
        j.size = layerStore.size(j.chainId!);
        // Blob there too ('exists'), or being fetched for the record only ('done' when it is).
        if (!j.needBlob) progress({ kind: 'layer', id: j.id, status: 'exists' });
        else j.blobDone.promise.then(() => progress({ kind: 'layer', id: j.id, status: 'done' }), () => { /* reported */ });
        continue;
      }
      for (;;) {
        if (failed !== undefined) throw failed;
        if (j.fan?.attachable) {
          // Live: replay what this download has received, then follow it.
          const fan = j.fan;
          try {
            await unpack(j, fan.attach());
          } catch {
            fan.detach();
            // The download failed (it retries, or says why: a digest mismatch explains a corrupt
            // gzip stream), or the unpack did: once the blob is in, unpack from it.
            await j.blobDone.promise;
            if (failed !== undefined) throw failed;
            await fromFile(j);
          }
          await j.blobDone.promise;
          break;
        }
        if (j.downloaded) { await fromFile(j); break; }
        // Not started, between attempts, or past the replay cap: wait for news.
        await new Promise<void>((r) => { j.wake = r; });
        j.wake = undefined;
      }
      progress({ kind: 'layer', id: j.id, status: 'done' });
    }
  };

  const workers = Array.from({ length: Math.max(1, Math.min(concurrency, queue.length)) }, worker);
  let cfg: C | undefined;
  const unpacking = getConfig().then((c) => { cfg = c; return unpacker(); }).catch(fail);
  await Promise.all([...workers, unpacking]);
  if (failed !== undefined) {
    // A layer unpacked from bytes that its download then refused must not stay.
    for (const j of jobs) if (j.unpacked && !j.downloaded) layerStore.remove(j.chainId!);
    throw failed;
  }
  return cfg!;
}
