// One layer of a pull, start to end: download the blob into the content store (digest and size
// checked while it streams) and, on the same bytes as they arrive, unpack it into a private temp
// dir (diff id computed on the way); or unpack a blob that is already stored. Retries network
// failures (3 tries, backoff). The temp dir is not committed here: the caller checks the diff id
// against the image config and moves layers into place in chain order (LayerStore.commit).
//
// Runs on the main thread or in a pull worker (pull-worker.ts): everything it takes and gives is
// plain data, and progress goes through a callback.
import fs = require('fs');
import type { Readable } from 'stream';
import type { ContentStore, LayerStore } from './store';
import type { Progress } from './types';
import type { RegistryClient } from './registry/client';
import { sleep } from './registry/client';
import { errorText, isRetryable, RegistryError } from './registry/errors';
import { TsrunError } from '../runtime/errors';
import { trace } from '../runtime/trace';
import type { BlobWriter } from './store/content';
import type { LayerWriter } from './store/layers';

export interface LayerTask {
  digest: string;
  size: number;
  mediaType: string;
  /** Short id, for progress and errors. */
  id: string;
  /** Fetch the blob (else it is read from the content store). */
  download: boolean;
  /** Unpack it into a temp dir. */
  unpack: boolean;
}

/** What an unpack gave: the temp dir to commit, the diff id and the unpacked size. */
export interface LayerResult { tmp?: string; diffId?: string; size?: number }

/** Lets the caller stop a task: the current download is destroyed and the task fails. */
export class Abort {
  reason?: Error;
  private hooks = new Set<(e: Error) => void>();
  abort(e: Error): void {
    if (this.reason) return;
    this.reason = e;
    for (const h of this.hooks) h(e);
  }
  on(h: (e: Error) => void): () => void {
    this.hooks.add(h);
    return () => this.hooks.delete(h);
  }
}

const TRIES = 3;
const PROGRESS_MS = 100;
const COALESCE = 1 << 20;

/**
 * Reads a response to its end, handing `sink` the bytes in ~1 MiB pieces (network chunks are
 * 16-64 KiB: one write syscall and one gunzip thread-pool round trip per piece instead of per
 * chunk). When sink returns a promise the stream is paused until it settles. 'data' events,
 * not an async iterator: its promises and buffering cost a few per cent of a large pull's CPU.
 */
function pump(src: Readable, sink: (c: Buffer) => Promise<void> | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let pending: Buffer[] = [];
    let len = 0;
    let waiting = false;
    let ended = false;
    let done = false;
    const finish = (e?: unknown) => {
      if (done) return;
      done = true;
      src.off('data', onData);
      if (e !== undefined) { src.destroy(); reject(e); } else resolve();
    };
    const take = (): Buffer => {
      const c = pending.length === 1 ? pending[0] : Buffer.concat(pending, len);
      pending = [];
      len = 0;
      return c;
    };
    const deliver = (c: Buffer): void => {
      let p: Promise<void> | undefined;
      try { p = sink(c); } catch (e) { finish(e); return; }
      if (!p) return;
      waiting = true;
      src.pause();
      p.then(() => {
        waiting = false;
        if (done) return;
        if (ended) atEnd();
        else src.resume();
      }, finish);
    };
    const atEnd = () => {
      if (len) { deliver(take()); if (waiting || done) return; }
      finish();
    };
    const onData = (c: Buffer) => {
      pending.push(c);
      len += c.length;
      if (len >= COALESCE && !waiting) deliver(take());
    };
    src.on('data', onData);
    src.on('end', () => { ended = true; if (!waiting) atEnd(); });
    src.on('error', (e) => finish(e));
    src.on('close', () => {
      if (!ended) finish(Object.assign(new Error('connection closed before the end of the blob (aborted)'), { code: 'ECONNRESET' }));
    });
  });
}

export async function fetchLayer(stores: { content: ContentStore; layers: LayerStore }, client: RegistryClient, repo: string,
  task: LayerTask, progress: Progress, abort: Abort): Promise<LayerResult> {
  const { content, layers } = stores;
  const label = `layer ${task.id}`;
  for (let attempt = 1; ; attempt++) {
    if (abort.reason) throw abort.reason;
    let blob: BlobWriter | undefined;
    let lw: LayerWriter | undefined;
    let off: (() => void) | undefined;
    try {
      if (task.download) {
        const { stream } = await client.getBlob(repo, task.digest);
        if (abort.reason) { stream.destroy(); throw abort.reason; }
        trace(`layer ${task.id}: response`);
        off = abort.on((e) => stream.destroy(e));
        blob = content.writer({ digest: task.digest, size: task.size });
        if (task.unpack) lw = layers.writer(task.mediaType, label);
        let got = 0;
        let last = 0;
        let unpackErr: unknown;
        const w = blob;
        const unpacker = lw;
        await pump(stream, (c) => {
          w.write(c);
          got += c.length;
          const now = Date.now();
          if (now - last >= PROGRESS_MS || got === task.size) { last = now; progress({ kind: 'layer', id: task.id, status: 'downloading', current: got, total: task.size }); }
          if (!unpacker || unpackErr !== undefined) return undefined;
          // An unpack error is reported once the download is whole and checked: a digest
          // mismatch explains a corrupt gzip stream better than the gzip error does.
          try {
            const p = unpacker.write(c);
            return p?.catch((e: unknown) => { unpackErr = e; });
          } catch (e) {
            unpackErr = e;
            return undefined;
          }
        });
        if (abort.reason) throw abort.reason;
        blob.commit();
        blob = undefined;
        trace(`layer ${task.id}: blob stored`);
        if (unpackErr !== undefined) throw unpackErr;
        if (lw) progress({ kind: 'layer', id: task.id, status: 'verifying' });
      } else if (task.unpack) {
        lw = layers.writer(task.mediaType, label);
        const file = content.path(task.digest);
        const total = content.size(task.digest);
        let done = 0;
        let last = 0;
        progress({ kind: 'layer', id: task.id, status: 'extracting', current: 0, total });
        const fd = fs.openSync(file, 'r');
        try {
          for (;;) {
            if (abort.reason) throw abort.reason;
            const buf = Buffer.allocUnsafe(COALESCE);
            const n = fs.readSync(fd, buf, 0, buf.length, null);
            if (n === 0) break;
            const p = lw.write(n === buf.length ? buf : buf.subarray(0, n));
            if (p) await p;
            done += n;
            const now = Date.now();
            if (now - last >= PROGRESS_MS) { last = now; progress({ kind: 'layer', id: task.id, status: 'extracting', current: done, total }); }
          }
        } finally {
          fs.closeSync(fd);
        }
      }
      if (!lw) return {};
      const r = await lw.finish();
      trace(`layer ${task.id}: unpacked`);
      return { tmp: lw.tmp, diffId: r.diffId, size: r.size };
    } catch (e) {
      blob?.abort();
      lw?.abort();
      if (abort.reason) throw abort.reason;
      if (!task.download || attempt >= TRIES || !isRetryable(e)) {
        // Store errors already say which blob or layer; network errors get the layer's id.
        throw e instanceof TsrunError ? e : new RegistryError(`${label}: ${errorText(e)}`);
      }
      progress({ kind: 'layer', id: task.id, status: 'waiting' });
      await sleep(250 * 2 ** (attempt - 1));
    } finally {
      off?.();
    }
  }
}
