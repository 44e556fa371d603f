// pullImage: resolve a reference on its registry, download the layers in parallel into the
// content store (digests verified while streaming) and unpack them into the layer store.
//
// Scheduling. Downloads run `concurrency` at a time (default 3, docker's
// max-concurrent-downloads), in layer order. Unpacking is sequential by chain (a layer is
// unpacked on top of its parent chain), so one layer at a time is the "head":
//  - a download that starts while its layer is the head is teed: one branch goes to
//    content.ingest, the other straight into layers.unpack, so the first layer (and every
//    layer of a one-layer image, the common small case) is unpacked while it downloads;
//  - a layer whose download started earlier (while a lower layer was still being unpacked)
//    is unpacked from its stored blob as soon as both its download and its parent are done:
//    reading back a just-written blob comes from the page cache, and this keeps the
//    downloads running at full width instead of holding each one back to the unpacker's pace.
// The wall time is then about max(download time / width, sum of unpack times) plus the
// first layer's download, instead of their sum.
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

export interface PullOptions {
  /** "os/arch[/variant]"; default: the host's. */
  platform?: string;
  progress?: Progress;
  /** Parallel layer downloads (default 3). */
  concurrency?: number;
  /** A client to use (tests, or a caller that already logged in); default: one for ref.domain. */
  client?: RegistryClient;
}

const LAYER_TYPES = new Set<string>([MT.OCI_LAYER, MT.OCI_LAYER_GZIP, MT.OCI_LAYER_ZSTD, MT.DOCKER_LAYER_GZIP, MT.DOCKER_LAYER_FOREIGN]);
const TRIES = 3;
const PROGRESS_MS = 100;
const COALESCE = 1 << 20;

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

/**
 * Splits a stream in two with backpressure (the slower branch sets the pace). When one
 * branch's consumer fails, call the returned abort(err) to stop the source and the other branch.
 */
function tee(src: Readable, onChunk: (n: number) => void): { a: PassThrough; b: PassThrough; abort: (e: Error) => void; dropB: () => void } {
  const a = new PassThrough({ highWaterMark: 1 << 20 });
  const b = new PassThrough({ highWaterMark: 1 << 20 });
  // Consumers see errors through their iterators; these keep a late one from being uncaught.
  a.on('error', () => { /* seen by the consumer */ });
  b.on('error', () => { /* seen by the consumer */ });
  let bLive = true;
  let waiting = 0;
  const resume = () => { if (--waiting === 0) src.resume(); };
  // Network chunks are small (16-64 KB): both consumers get them in ~1 MB pieces, which cuts
  // their write syscalls (and thread-pool round trips) by an order of magnitude.
  let pending: Buffer[] = [];
  let pendingLen = 0;
  const flush = (): boolean => {
    if (!pendingLen) return true;
    const c = pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingLen);
    pending = [];
    pendingLen = 0;
    const okA = a.write(c);
    const okB = bLive ? b.write(c) : true;
    if (!okA || !okB) {
      src.pause();
      if (!okA) { waiting++; a.once('drain', resume); }
      if (!okB) { waiting++; b.once('drain', resume); }
    }
    return okA && okB;
  };
  src.on('data', (c: Buffer) => {
    onChunk(c.length);
    pending.push(c);
    pendingLen += c.length;
    if (pendingLen >= COALESCE) flush();
  });
  src.on('end', () => { flush(); a.end(); if (bLive) b.end(); });
  src.on('error', (e) => { a.destroy(e); b.destroy(e); });
  const abort = (e: Error) => { src.destroy(e); a.destroy(e); b.destroy(e); };
  // The second consumer gave up: the first one goes on alone.
  const dropB = () => {
    if (!bLive) return;
    bLive = false;
    b.removeAllListeners('drain');
    if (waiting > 0 && b.writableNeedDrain) resume();
    b.destroy();
  };
  return { a, b, abort, dropB };
}

/** Counts bytes as they pass, handing them on in pieces of about `COALESCE` bytes. */
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
  diffId: string;
  chainId: string;
  parent: string | undefined;
  needBlob: boolean;
  needUnpack: boolean;
  owner?: 'tee' | 'seq';      // who unpacks it
  blobDone: Deferred<void>;
  unpacked: Deferred<UnpackResult>;
  size: number;               // unpacked size
  active?: (e: Error) => void; // aborts the transfer in flight
}

/** What LayerStore may offer beyond the documented API (used when present). */
interface LayerStoreExtras {
  get?(chainId: string): { size?: number } | undefined;
  size?(chainId: string): number;
  remove?(chainId: string): unknown;
  delete?(chainId: string): unknown;
}

function layerSize(layers: LayerStore, chainId: string): number {
  const x = layers as unknown as LayerStoreExtras;
  try {
    if (typeof x.size === 'function') return Number(x.size(chainId)) || 0;
    if (typeof x.get === 'function') return Number(x.get(chainId)?.size) || 0;
  } catch { /* unknown */ }
  return 0;
}

async function removeLayer(layers: LayerStore, chainId: string): Promise<void> {
  const x = layers as unknown as LayerStoreExtras;
  try {
    if (typeof x.remove === 'function') await x.remove(chainId);
    else if (typeof x.delete === 'function') await x.delete(chainId);
  } catch { /* best effort */ }
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
  const top = await client.getManifest(repo, reference);
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

  // The config: from the content store when we have it, else fetched and verified (stored at the end).
  const cfgDigest = manifest.config.digest;
  const cfgBytes = store.content.has(cfgDigest) ? store.content.read(cfgDigest) : await client.getBlobBytes(repo, cfgDigest);
  const config = parseJSON<ImageConfig>(cfgBytes, `config ${cfgDigest}`);
  const diffIds = config.rootfs?.diff_ids;
  if (!Array.isArray(diffIds) || diffIds.length !== manifest.layers.length) {
    throw new RegistryError(`config ${shortId(cfgDigest)}: ${Array.isArray(diffIds) ? diffIds.length : 0} diff_ids for ${manifest.layers.length} layers`);
  }
  if (wanted) {
    const got = normalisePlatform({ os: config.os, architecture: config.architecture, variant: config.variant });
    if (got.os !== wanted.os || got.architecture !== wanted.architecture) {
      throw new RegistryError(`image with reference ${familiarRef(ref)} was found but does not match the specified platform: wanted ${formatPlatform(wanted)}, actual: ${formatPlatform(got)}`);
    }
  }

  // The layer jobs: chain ids, and what is already here.
  const jobs: LayerJob[] = [];
  let parent: string | undefined;
  for (let i = 0; i < manifest.layers.length; i++) {
    const desc = manifest.layers[i];
    const chainId = LayerStore.chainId(parent, diffIds[i]);
    const needUnpack = !store.layers.has(chainId);
    jobs.push({
      i, desc, id: shortId(desc.digest), diffId: diffIds[i], chainId, parent,
      needUnpack, needBlob: !store.content.has(desc.digest),
      blobDone: new Deferred(), unpacked: new Deferred(), size: 0,
    });
    parent = chainId;
  }
  await fetchLayers(store, client, repo, jobs, progress, opts.concurrency ?? 3);

  // Record: manifest (and index) and config blobs, then the image (put merges tags and digests
  // into a record with the same id and moves the tags here).
  const layers: LayerRecord[] = jobs.map((j) => ({ chainId: j.chainId, diffId: j.diffId, blobDigest: j.desc.digest, mediaType: j.desc.mediaType, size: j.desc.size }));
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
  progress({ kind: 'digest', digest: top.digest });
  return store.find(rec.id) ?? rec;
}

/**
 * Downloads the missing blobs (in parallel) and unpacks the missing layers (in chain order).
 * Returns whether anything was downloaded or unpacked.
 */
async function fetchLayers(store: ImageStore, client: RegistryClient, repo: string, jobs: LayerJob[], progress: Progress, concurrency: number): Promise<boolean> {
  const content = store.content;
  const layerStore = store.layers;
  let head = -1;           // the layer being (or next to be) unpacked
  let failed: unknown;
  const fail = (e: unknown) => {
    if (failed === undefined) failed = e;
    for (const j of jobs) j.active?.(e instanceof Error ? e : new Error(String(e)));
  };

  for (const j of jobs) {
    if (!j.needUnpack && !j.needBlob) { progress({ kind: 'layer', id: j.id, status: 'exists' }); j.blobDone.resolve(); }
    else if (!j.needBlob) j.blobDone.resolve();
    else progress({ kind: 'layer', id: j.id, status: 'waiting' });
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
      try {
        const { stream } = await client.getBlob(repo, j.desc.digest);
        const expected = { digest: j.desc.digest, size: j.desc.size };
        // Decided once the response is here: the head layer is unpacked while it downloads.
        const tee_ = j.needUnpack && head === j.i && j.owner !== 'seq';
        if (tee_) j.owner = 'tee';
        if (tee_) {
          const t = tee(stream, onChunk);
          j.active = t.abort;
          const ing = content.ingest(t.a, expected).catch((e) => { t.abort(e); throw e; });
          // A failed unpack lets the download finish: a digest mismatch says more than a corrupt gzip stream.
          const unp = layerStore.unpack(t.b, j.desc.mediaType, j.parent, j.diffId, { name: j.id }).catch((e) => { t.dropB(); throw e; });
          const [ri, ru] = await Promise.allSettled([ing, unp]);
          if (ri.status === 'rejected') {
            // The unpack may have succeeded on bytes that the digest check then refused.
            if (ru.status === 'fulfilled') await removeLayer(layerStore, ru.value.chainId);
            throw ri.reason;
          }
          if (ru.status === 'rejected') throw ru.reason;
          j.active = undefined;
          checkUnpacked(j, ru.value);
          j.size = ru.value.size;
          progress({ kind: 'layer', id: j.id, status: 'done' });
          j.unpacked.resolve(ru.value);
        } else {
          j.active = (e) => stream.destroy(e);
          await content.ingest(counted(stream, onChunk), expected);
          j.active = undefined;
          progress({ kind: 'layer', id: j.id, status: j.needUnpack ? 'verifying' : 'done' });
        }
        j.blobDone.resolve();
        return;
      } catch (e) {
        j.active = undefined;
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
      try { await download(j); } catch (e) { j.blobDone.reject(e); j.unpacked.reject(e); fail(e); return; }
    }
  };

  // The unpacker: one layer at a time, in chain order.
  const unpacker = async () => {
    for (const j of jobs) {
      if (!j.needUnpack) { j.size = layerSize(layerStore, j.chainId); continue; }
      head = j.i;
      await j.blobDone.promise;
      if (failed !== undefined) throw failed;
      if (j.owner === 'tee') { await j.unpacked.promise; continue; }
      j.owner = 'seq';
      const total = content.size(j.desc.digest);
      let done = 0;
      let lastEmit = 0;
      const file = fs.createReadStream(content.path(j.desc.digest), { highWaterMark: 1 << 20 });
      j.active = (e) => file.destroy(e);
      progress({ kind: 'layer', id: j.id, status: 'extracting', current: 0, total });
      const src = counted(file as AsyncIterable<Buffer>, (n) => {
        done += n;
        const now = Date.now();
        if (now - lastEmit >= PROGRESS_MS) { lastEmit = now; progress({ kind: 'layer', id: j.id, status: 'extracting', current: done, total }); }
      });
      const r = await layerStore.unpack(src, j.desc.mediaType, j.parent, j.diffId, { name: j.id });
      j.active = undefined;
      checkUnpacked(j, r);
      j.size = r.size;
      progress({ kind: 'layer', id: j.id, status: 'done' });
    }
  };

  // The unpacker first: it sets `head` before the first download looks at it.
  const unpacking = unpacker().catch((e) => { fail(e); });
  const workers = Array.from({ length: Math.max(1, Math.min(concurrency, queue.length)) }, worker);
  const all = [...workers, unpacking];
  await Promise.all(all);
  if (failed !== undefined) throw failed;
  return jobs.some((j) => j.needBlob || j.needUnpack);
}

function checkUnpacked(j: LayerJob, r: UnpackResult): void {
  if (r.diffId !== j.diffId) throw new DigestMismatchError(`layer ${j.id}: diff id`, j.diffId, r.diffId);
  if (r.chainId !== j.chainId) throw new RegistryError(`layer ${j.id}: chain id ${r.chainId}, expected ${j.chainId}`);
}
