// pushImage: upload an image of the store to a registry: its layer blobs as stored (3 at a
// time; a blob the repository already has is skipped, one that another repository of the
// same registry has is mounted from there), then the config, then the manifest (the stored
// bytes when they describe this record, so the digest stays the same; else a new one).
import fs = require('fs');
import type { Descriptor, ImageRecord, ImageRef, Manifest, Progress } from './types';
import { MT } from './types';
import { familiarRef, repoName } from './ref';
import type { ImageStore } from './store';
import { RegistryClient } from './registry/client';
import { errorText, RegistryError } from './registry/errors';
import { blobSources, recordBlobSource } from './registry/sources';
import { shortId } from './pull';

export interface PushOptions {
  progress?: Progress;
  /** Parallel blob uploads (default 3). */
  concurrency?: number;
  client?: RegistryClient;
}

const PROGRESS_MS = 100;

/** Pushes the image `localKey` (an id or a reference the store finds) as `target`. Errors: "push <ref>: <why>". */
export async function pushImage(store: ImageStore, localKey: string, target: ImageRef, opts: PushOptions = {}): Promise<{ digest: string }> {
  try {
    return await push(store, localKey, target, opts);
  } catch (e) {
    const err = e as RegistryError;
    throw new RegistryError(`push ${familiarRef(target)}: ${errorText(e)}`, err?.status, err?.code);
  }
}

/** The manifest to push: the stored one when it matches the record, else a new one. */
function manifestFor(store: ImageStore, rec: ImageRecord): { bytes: Buffer; mediaType: string; built: boolean } {
  const c = store.content;
  if (rec.manifestDigest && c.has(rec.manifestDigest) && (rec.manifestMediaType === MT.OCI_MANIFEST || rec.manifestMediaType === MT.DOCKER_MANIFEST)) {
    const bytes = c.read(rec.manifestDigest);
    try {
      const m = JSON.parse(bytes.toString('utf8')) as Manifest;
      const same = m.config?.digest === rec.id && Array.isArray(m.layers) && m.layers.length === rec.layers.length
        && m.layers.every((l, i) => l.digest === rec.layers[i].blobDigest);
      if (same) return { bytes, mediaType: rec.manifestMediaType, built: false };
    } catch { /* build a new one */ }
  }
  const docker = rec.layers.length > 0 && rec.layers.every((l) => l.mediaType === MT.DOCKER_LAYER_GZIP || l.mediaType === MT.DOCKER_LAYER_FOREIGN);
  const mediaType = docker ? MT.DOCKER_MANIFEST : MT.OCI_MANIFEST;
  const layerType = (t: string) => (docker ? t : t === MT.DOCKER_LAYER_GZIP ? MT.OCI_LAYER_GZIP : t);
  const layers: Descriptor[] = rec.layers.map((l) => ({ mediaType: layerType(l.mediaType), digest: l.blobDigest, size: c.size(l.blobDigest) }));
  const m: Manifest = {
    schemaVersion: 2,
    mediaType,
    config: { mediaType: docker ? MT.DOCKER_CONFIG : MT.OCI_CONFIG, digest: rec.id, size: c.size(rec.id) },
    layers,
  };
  return { bytes: Buffer.from(JSON.stringify(m, null, 3)), mediaType, built: true };
}

async function push(store: ImageStore, localKey: string, target: ImageRef, opts: PushOptions): Promise<{ digest: string }> {
  const progress: Progress = opts.progress ?? (() => { /* none */ });
  if (target.digest !== undefined) throw new RegistryError('cannot push to a digest reference: give a tag');
  const rec = store.find(localKey);
  if (!rec) throw new RegistryError(`no such image: ${localKey}`);
  const content = store.content;
  for (const d of [rec.id, ...rec.layers.map((l) => l.blobDigest)]) {
    if (!content.has(d)) throw new RegistryError(`blob ${d} of image ${shortId(rec.id)} is not in the content store`);
  }
  const { bytes, mediaType, built } = manifestFor(store, rec);
  const client = opts.client ?? new RegistryClient(target.domain);
  const repo = target.path;
  const tag = target.tag ?? 'latest';

  const pushBlob = async (digest: string, show: boolean) => {
    const id = shortId(digest);
    const size = content.size(digest);
    // 'pushing' from the start (not 'waiting'): tells the renderer this is a push.
    if (show) progress({ kind: 'layer', id, status: 'pushing', current: 0, total: size });
    if (await client.blobExists(repo, digest) !== undefined) {
      if (show) progress({ kind: 'layer', id, status: 'exists' });
      recordBlobSource(target.domain, repo, digest);
      return;
    }
    let location: URL | undefined;
    for (const from of blobSources(target.domain, digest, repo, rec).slice(0, 3)) {
      let r: 'mounted' | URL;
      try { r = await client.mountBlob(repo, digest, from); } catch { continue; }
      if (r === 'mounted') {
        if (show) progress({ kind: 'layer', id, status: 'mounted' });
        recordBlobSource(target.domain, repo, digest);
        return;
      }
      location = r;
      break; // the registry opened an upload instead: use it
    }
    let sent = 0;
    let lastEmit = 0;
    const file = content.path(digest);
    await client.uploadBlob(repo, digest, {
      length: size,
      open: () => {
        sent = 0;
        const s = fs.createReadStream(file, { highWaterMark: 1 << 20 });
        if (show) {
          s.on('data', (c) => {
            sent += c.length;
            const now = Date.now();
            if (now - lastEmit >= PROGRESS_MS) { lastEmit = now; progress({ kind: 'layer', id, status: 'pushing', current: sent, total: size }); }
          });
        }
        return s;
      },
    }, location);
    if (show) progress({ kind: 'layer', id, status: 'pushed' });
    recordBlobSource(target.domain, repo, digest);
  };

  // Layers (each distinct blob once), `concurrency` at a time; then the config.
  const queue = [...new Set(rec.layers.map((l) => l.blobDigest))];
  let failed: unknown;
  const worker = async () => {
    for (;;) {
      const d = queue.shift();
      if (!d || failed !== undefined) return;
      try { await pushBlob(d, true); } catch (e) { if (failed === undefined) failed = e; return; }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 3, queue.length)) }, worker));
  if (failed !== undefined) throw failed;
  await pushBlob(rec.id, false);

  const digest = await client.putManifest(repo, tag, bytes, mediaType);
  if (built && !content.has(digest)) content.put(bytes, { digest, size: bytes.length });
  store.withLock(() => {
    const cur = store.find(rec.id) ?? rec;
    const next: ImageRecord = { ...cur, repoDigests: [...cur.repoDigests, `${repoName(target)}@${digest}`] };
    if (built) { next.manifestDigest = digest; next.manifestMediaType = mediaType; }
    store.put(next); // merges: the digest is added
  });
  progress({ kind: 'digest', digest });
  return { digest };
}

