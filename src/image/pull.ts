// pullImage: resolve a reference on its registry, download the layers into the content store
// (digests verified while streaming) and unpack them into the layer store.
//
// Scheduling. Layers are independent directories (each holds only its own diff; overlayfs
// stacks them), so they are fetched and unpacked in parallel and in any order: as soon as the
// manifest is here, each missing blob is downloaded (`concurrency` at a time, default 3,
// docker's max-concurrent-downloads) and unpacked from the same bytes as they arrive, into a
// private temp dir (layer-fetch.ts); the config is fetched alongside. A layer is committed
// (moved into place under its chain id, computed from the config's diff ids) once its blob digest
// and its diff id are checked, in chain order, so a layer that exists has its parents. A
// mismatch removes the temp dir and fails the pull.
//
// Threads. With two or more layers to fetch, this thread and worker threads share them (one per
// core in all; dist/pull-worker.js, when it is next to this bundle; TSRUN_PULL_THREADS overrides):
// hashing (blob digest, diff id), decompression, tar parsing and the file system calls are the
// CPU cost of a pull, and one thread is one core. This thread starts on the first layer at once
// while the workers start (30-50 ms). A single layer stays here: a worker would cost more.
import fs = require('fs');
import os = require('os');
import path = require('path');
import type { Worker as WorkerT } from 'worker_threads';
import type { Descriptor, ImageConfig, ImageRecord, ImageRef, Index, LayerRecord, Manifest, Progress, ProgressEvent } from './types';
import { MT } from './types';
import { familiarRef, formatRef, repoName } from './ref';
import { ImageStore, LayerStore, type ContentStore } from './store';
import { Abort, fetchLayer, type LayerResult, type LayerTask } from './layer-fetch';
import type { PullWorkerData } from './pull-worker';
import { RegistryClient } from './registry/client';
import { DigestMismatchError, errorText, RegistryError } from './registry/errors';
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
}

const LAYER_TYPES = new Set<string>([MT.OCI_LAYER, MT.OCI_LAYER_GZIP, MT.OCI_LAYER_ZSTD, MT.DOCKER_LAYER_GZIP, MT.DOCKER_LAYER_FOREIGN]);

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

interface LayerJob {
  i: number;
  desc: Descriptor;
  id: string;                 // short id for progress
  needBlob: boolean;          // not in the content store
  dupOf?: LayerJob;           // the same blob, fetched by that job
  diffId?: string;            // from the config (known once it is here)
  chainId?: string;
  parent?: string;
  blobDone: Deferred<void>;   // the blob is in the content store
  committed: Deferred<void>;  // the layer is in the layer store
  size: number;               // unpacked size
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
  const wanted = opts.platform ? parsePlatform(opts.platform) : undefined;

  progress({ kind: 'resolve', ref: familiarRef(ref) });
  trace('pull: start');
  const pool = new WorkerPool(opts.client === undefined ? pullThreads() - 1 : 0, { root: store.root, domain: client.domain, repo: ref.path });
  try {
    return await pullWith(store, ref, opts, client, pool, progress, wanted);
  } finally {
    pool.close();
  }
}

async function pullWith(store: ImageStore, ref: ImageRef, opts: PullOptions, client: RegistryClient, pool: WorkerPool,
  progress: Progress, wanted: ReturnType<typeof parsePlatform> | undefined): Promise<ImageRecord> {
  const repo = ref.path;
  const reference = ref.digest ?? ref.tag ?? 'latest';
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
    i, desc, id: shortId(desc.digest), needBlob: !store.content.has(desc.digest), blobDone: new Deferred<void>(), committed: new Deferred<void>(), size: 0,
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
      parent = j.chainId;
    }
    return { bytes, config };
  };
  const { bytes: cfgBytes, config } = await fetchLayers(store, client, repo, jobs, getConfig, progress, opts.concurrency ?? 3, pool);

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

/** Threads that fetch layers (this one included): TSRUN_PULL_THREADS, else one per core (at
 *  least 2); 1 when dist/pull-worker.js is not next to this bundle (tests that bundle src/image). */
function pullThreads(): number {
  const env = process.env.TSRUN_PULL_THREADS;
  const n = env !== undefined && env !== '' ? Math.floor(Number(env)) : Math.max(2, os.availableParallelism());
  if (!(n > 1) || !fs.existsSync(WORKER_FILE)) return 1;
  return n;
}

const WORKER_FILE = path.join(__dirname, 'pull-worker.js');

/**
 * Runs layer tasks: up to `localWidth` at a time on this thread, and `slots` at a time in each
 * worker thread (pull-worker.ts) that has started. This thread takes the first task at once:
 * a worker needs some 30-50 ms to start.
 */
class Runner {
  private readonly ab = new Abort();
  private running = 0;
  private readonly queue: { task: LayerTask; d: Deferred<LayerResult> }[] = [];
  private readonly free: WorkerT[] = [];                 // one entry per free task slot of a worker
  private readonly all: WorkerT[] = [];
  private readonly current = new Map<number, { w: WorkerT; d: Deferred<LayerResult> }>();
  private n = 0;

  constructor(private readonly stores: { content: ContentStore; layers: LayerStore }, private readonly client: RegistryClient,
    private readonly repo: string, private readonly progress: Progress, private readonly localWidth: number,
    workers: PoolWorker[] = [], slots = 1) {
    for (const pw of workers) {
      const w = pw.w;
      w.postMessage({ type: 'client', state: client.state() });
      const lost = (e: Error) => {
        for (const [n, c] of this.current) if (c.w === w) { this.current.delete(n); c.d.reject(e); }
        for (const list of [this.all, this.free]) for (let k = list.indexOf(w); k >= 0; k = list.indexOf(w)) list.splice(k, 1);
        this.next();
      };
      pw.onMessage = (m) => {
        if (m.type === 'progress') { progress(m.e); return; }
        if (m.type === 'ready') {
          for (let i = 0; i < slots; i++) this.free.push(w);
        } else {
          const c = this.current.get(m.n);
          this.current.delete(m.n);
          if (m.type === 'done') c?.d.resolve(m.result);
          else c?.d.reject(new TsrunError(m.message));
          this.free.push(w);
        }
        this.next();
      };
      pw.onLost = lost;
      this.all.push(w);
      if (pw.lost) lost(pw.lost);
      else if (pw.ready) for (let i = 0; i < slots; i++) this.free.push(w);
    }
  }

  private next(): void {
    while (this.queue.length) {
      if (this.free.length) {
        const w = this.free.shift()!;
        const { task, d } = this.queue.shift()!;
        const n = ++this.n;
        this.current.set(n, { w, d });
        w.postMessage({ type: 'task', n, task });
      } else if (this.running < this.localWidth) {
        const { task, d } = this.queue.shift()!;
        this.running++;
        fetchLayer(this.stores, this.client, this.repo, task, this.progress, this.ab).then(d.resolve, d.reject).finally(() => {
          this.running--;
          this.next();
        });
      } else return;
    }
  }

  run(task: LayerTask): Promise<LayerResult> {
    if (this.ab.reason) return Promise.reject(this.ab.reason);
    const d = new Deferred<LayerResult>();
    this.queue.push({ task, d });
    this.next();
    return d.promise;
  }

  abort(e: Error): void {
    if (this.ab.reason) return;
    this.ab.abort(e);
    for (const q of this.queue.splice(0)) q.d.reject(e);
    for (const w of this.all) w.postMessage({ type: 'abort', message: e.message });
  }

  async close(): Promise<void> {
    await Promise.all(this.all.map((w) => w.terminate()));
  }
}

type WorkerMessage = { type: 'ready' } | { type: 'progress'; e: ProgressEvent } | { type: 'done'; n: number; result: LayerResult } | { type: 'error'; n: number; message: string };

/** A worker thread of a WorkerPool, then of a Runner. */
interface PoolWorker {
  w: WorkerT;
  ready: boolean;
  lost?: Error;
  onMessage?: (m: WorkerMessage) => void;
  onLost?: (e: Error) => void;
}

function startWorker(data: PullWorkerData): PoolWorker {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Worker } = require('worker_threads') as typeof import('worker_threads');
  const pw: PoolWorker = { w: new Worker(WORKER_FILE, { workerData: data }), ready: false };
  let closing = false;
  const lost = (e: Error) => { if (closing) return; pw.lost ??= e; pw.onLost?.(e); };
  pw.w.on('message', (m: WorkerMessage) => { if (m.type === 'ready') pw.ready = true; pw.onMessage?.(m); });
  pw.w.on('error', (e) => lost(new TsrunError(`pull worker: ${errorText(e)}`)));
  pw.w.on('exit', (code) => lost(new TsrunError(`pull worker exited (${code})`)));
  const terminate = pw.w.terminate.bind(pw.w);
  pw.w.terminate = () => { closing = true; return terminate(); };
  return pw;
}

/**
 * Up to `max` worker threads for a pull. They start when the layers are known (take()) or, when
 * the manifest is slow to come (a registry across a network), after EARLY_MS: then their start-up
 * (30-50 ms) hides behind the round trips, and a pull that needs fewer ends the others. On a
 * registry nearby the manifest is here first, and a one-layer pull starts none.
 */
class WorkerPool {
  private started: PoolWorker[] = [];
  private timer?: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly max: number, private readonly data: PullWorkerData) {
    if (max > 0) {
      this.timer = setTimeout(() => { this.timer = undefined; this.start(max); }, EARLY_MS);
      this.timer.unref();
    }
  }

  private start(n: number): void {
    while (!this.closed && this.started.length < Math.min(n, this.max)) this.started.push(startWorker(this.data));
  }

  /** n workers (fewer when the pool is smaller); the others are ended. */
  take(n: number): PoolWorker[] {
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    this.start(n);
    const out = this.started.splice(0, n);
    this.close();
    return out;
  }

  close(): void {
    this.closed = true;
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    for (const pw of this.started.splice(0)) void pw.w.terminate();
  }
}

const EARLY_MS = 15;

/**
 * Downloads the missing blobs and unpacks the missing layers (in parallel, see the top of the
 * file), checks them against the config and commits them in chain order. Returns the config.
 */
async function fetchLayers<C>(store: ImageStore, client: RegistryClient, repo: string, jobs: LayerJob[],
  getConfig: () => Promise<C>, progress: Progress, concurrency: number, pool: WorkerPool): Promise<C> {
  const layerStore = store.layers;
  const stores = { content: store.content, layers: store.layers };

  // A blob that appears twice (Docker's empty layer, say) is downloaded once.
  const first = new Map<string, LayerJob>();
  for (const j of jobs) {
    if (!j.needBlob) { j.blobDone.resolve(); continue; }
    const f = first.get(j.desc.digest);
    if (f) { j.needBlob = false; j.dupOf = f; f.blobDone.promise.then(() => j.blobDone.resolve(), (e) => j.blobDone.reject(e)); continue; }
    first.set(j.desc.digest, j);
    progress({ kind: 'layer', id: j.id, status: 'waiting' });
  }

  const width = Math.max(1, concurrency);
  trace('pull: runner');
  const downloads = first.size;
  // Worker threads for the layers this thread does not get to (this one takes one at a time then).
  const use = pool.take(downloads >= 2 ? Math.min(width, downloads) - 1 : 0);
  // (Two layers at a time per thread measured the same: 0.67 s either way on the large bench image.)
  const runner = use.length ? new Runner(stores, client, repo, progress, 1, use) : new Runner(stores, client, repo, progress, width);

  let failed: unknown;
  const fail = (e: unknown) => {
    if (failed !== undefined) return;
    failed = e;
    runner.abort(e instanceof Error ? e : new Error(String(e)));
  };
  let cfg: C | undefined;
  // The config is asked for after the layers: the first blob request gets the connection the
  // manifest came on (the layers are what the pull waits for).
  const cfgStart = new Deferred<void>();
  const cfgDone = cfgStart.promise.then(getConfig).then((c) => { cfg = c; });
  cfgDone.catch(fail);

  const layerJob = async (j: LayerJob, prev: LayerJob | undefined): Promise<void> => {
    let r: LayerResult | undefined;
    try {
      if (j.needBlob) {
        // The layer is unpacked from the download even before the config says whether it is
        // needed: with the blob missing, it nearly always is.
        r = await runner.run({ digest: j.desc.digest, size: j.desc.size, mediaType: j.desc.mediaType, id: j.id, download: true, unpack: true });
        j.blobDone.resolve();
        await cfgDone;
      } else {
        await cfgDone;
        await j.blobDone.promise;
        if (!layerStore.has(j.chainId!)) {
          r = await runner.run({ digest: j.desc.digest, size: j.desc.size, mediaType: j.desc.mediaType, id: j.id, download: false, unpack: true });
        }
      }
      if (r?.diffId !== undefined && r.diffId !== j.diffId) throw new DigestMismatchError(`layer ${j.id}: diff id`, j.diffId!, r.diffId);
      if (prev) await prev.committed.promise;
      if (failed !== undefined) throw failed;
      if (r?.tmp) {
        j.size = layerStore.commit(r.tmp, { chainId: j.chainId!, diffId: j.diffId!, parent: j.parent ?? null, size: r.size ?? 0 });
        r = undefined;
        progress({ kind: 'layer', id: j.id, status: 'done' });
      } else {
        j.size = layerStore.size(j.chainId!);
        progress({ kind: 'layer', id: j.id, status: j.needBlob ? 'done' : 'exists' });
      }
      j.committed.resolve();
    } catch (e) {
      if (r?.tmp) fs.rmSync(r.tmp, { recursive: true, force: true });
      j.blobDone.reject(e);
      j.committed.reject(e);
      fail(e);
    }
  };

  try {
    const layersDone = jobs.map((j, k) => layerJob(j, jobs[k - 1]));
    cfgStart.resolve();
    await Promise.all([cfgDone.catch(() => undefined), ...layersDone]);
  } finally {
    await runner.close();
  }
  if (failed !== undefined) throw failed;
  return cfg!;
}
