// save/load: the archive docker 25+ writes — an OCI image layout (oci-layout, index.json,
// blobs/sha256/...) that also carries docker-archive's manifest.json — and loading both that and
// the older docker-archive (manifest.json + layer tars) and plain OCI layouts.
import fs = require('fs');
import path = require('path');
import { TsrunError } from '../runtime/errors';
import { ImageStore } from './store';
import { familiar, normalise, storeImage, resolveImage, goArch } from './ops';
import { parseRef } from './ref';
import { MT, type ImageConfig, type ImageRecord, type Index, type Manifest, type LayerRecord } from './types';

const hex = (d: string) => d.replace(/^sha256:/, '');

function tmpDir(store: ImageStore, root: string): string {
  const base = path.join(root, 'image', 'tmp');
  fs.mkdirSync(base, { recursive: true });
  return fs.mkdtempSync(path.join(base, 'archive-'));
}

/** Write IMAGES as one archive to `out` (a path, or undefined for stdout). */
export async function saveImages(root: string, store: ImageStore, keys: string[], out: string | undefined): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const tar = require('tar') as typeof import('tar');
  const dir = tmpDir(store, root);
  try {
    const blobs = path.join(dir, 'blobs', 'sha256');
    fs.mkdirSync(blobs, { recursive: true });
    const link = (digest: string) => {
      const dst = path.join(blobs, hex(digest));
      if (fs.existsSync(dst)) return;
      try { fs.linkSync(store.content.path(digest), dst); } catch { fs.copyFileSync(store.content.path(digest), dst); }
    };
    const index: Index = { schemaVersion: 2, mediaType: MT.OCI_INDEX, manifests: [] };
    const dockerManifest: { Config: string; RepoTags: string[]; Layers: string[] }[] = [];
    const repositories: Record<string, Record<string, string>> = {};
    for (const key of keys) {
      const rec = resolveImage(store, key);
      const named = rec.repoTags.find((t) => t === safeNormalise(key));
      const tags = named ? [named] : rec.repoTags;
      link(rec.id);
      link(rec.manifestDigest);
      for (const l of rec.layers) link(l.blobDigest);
      for (const t of tags.length ? tags : [undefined]) {
        index.manifests.push({
          mediaType: rec.manifestMediaType, digest: rec.manifestDigest, size: store.content.size(rec.manifestDigest),
          ...(t ? { annotations: { 'io.containerd.image.name': t, 'org.opencontainers.image.ref.name': parseRef(t).tag ?? 'latest' } } : {}),
        });
      }
      dockerManifest.push({
        Config: `blobs/sha256/${hex(rec.id)}`, RepoTags: tags.map(familiar), Layers: rec.layers.map((l) => `blobs/sha256/${hex(l.blobDigest)}`),
      });
      for (const t of tags) {
        const r = parseRef(t);
        const repo = familiar(t).replace(/:[^:/]*$/, '');
        (repositories[repo] ??= {})[r.tag ?? 'latest'] = hex(rec.layers[rec.layers.length - 1]?.blobDigest ?? rec.id);
      }
    }
    fs.writeFileSync(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify(index));
    fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(dockerManifest));
    fs.writeFileSync(path.join(dir, 'repositories'), JSON.stringify(repositories));
    const entries = ['blobs', 'oci-layout', 'index.json', 'manifest.json', 'repositories'];
    if (out) {
      await tar.create({ cwd: dir, file: out, portable: true, noMtime: false }, entries);
    } else {
      if (process.stdout.isTTY) throw new TsrunError('cowardly refusing to save to a terminal. Use the -o flag or redirect');
      await new Promise<void>((resolve, reject) => {
        const s = tar.create({ cwd: dir, portable: true }, entries) as unknown as NodeJS.ReadableStream;
        s.on('error', reject);
        s.pipe(process.stdout);
        s.on('end', () => resolve());
      });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function safeNormalise(k: string): string | undefined {
  try { return normalise(k); } catch { return undefined; }
}

/** Load an archive (docker save's or an OCI layout in a tar); returns the lines docker prints. */
export async function loadImages(root: string, store: ImageStore, file: string | undefined): Promise<string[]> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const tar = require('tar') as typeof import('tar');
  const dir = tmpDir(store, root);
  try {
    const input = file ? fs.createReadStream(file) : process.stdin;
    if (!file && process.stdin.isTTY) throw new TsrunError('requested load from stdin, but stdin is empty');
    await new Promise<void>((resolve, reject) => {
      const x = tar.extract({ cwd: dir, strict: true, preservePaths: false, noChmod: true });
      input.on('error', reject);
      x.on('error', reject);
      x.on('finish', () => resolve());
      x.on('close', () => resolve());
      input.pipe(x);
    }).catch((e: Error) => { throw new TsrunError(`load: ${file ?? 'stdin'}: ${e.message}`); });
    const out: string[] = [];
    if (fs.existsSync(path.join(dir, 'index.json'))) {
      const index = readJSON<Index>(dir, 'index.json');
      const dm = fs.existsSync(path.join(dir, 'manifest.json')) ? readJSON<{ Config: string; RepoTags?: string[] }[]>(dir, 'manifest.json') : [];
      for (const d of index.manifests) {
        const rec = await loadManifest(store, dir, d.digest, d.mediaType);
        const name = d.annotations?.['io.containerd.image.name']
          ?? dm.find((m) => m.Config.endsWith(hex(rec.id)))?.RepoTags?.[0]
          ?? (d.annotations?.['org.opencontainers.image.ref.name'] && !d.annotations['org.opencontainers.image.ref.name'].includes('/') ? undefined : d.annotations?.['org.opencontainers.image.ref.name']);
        out.push(...tagLoaded(store, rec, name ? [name] : []));
      }
    } else if (fs.existsSync(path.join(dir, 'manifest.json'))) {
      for (const m of readJSON<{ Config: string; RepoTags?: string[] | null; Layers: string[] }[]>(dir, 'manifest.json')) {
        const cfgBuf = readIn(dir, m.Config);
        const cfg = JSON.parse(cfgBuf.toString()) as ImageConfig;
        const layers: LayerRecord[] = [];
        let parent: string | undefined;
        let size = 0;
        for (let i = 0; i < m.Layers.length; i++) {
          const p = within(dir, m.Layers[i]);
          const blobDigest = await store.content.ingest(fs.createReadStream(p));
          const mediaType = isGzip(p) ? MT.OCI_LAYER_GZIP : MT.OCI_LAYER;
          const u = await store.layers.unpack(fs.createReadStream(p), mediaType, parent, cfg.rootfs?.diff_ids?.[i]);
          layers.push({ chainId: u.chainId, diffId: u.diffId, blobDigest, mediaType, size: fs.statSync(p).size });
          parent = u.chainId;
          size += u.size;
        }
        const rec = storeImage(store, cfg, layers, [], size);
        out.push(...tagLoaded(store, rec, m.RepoTags ?? []));
      }
    } else {
      throw new TsrunError('load: the archive has neither index.json (OCI layout) nor manifest.json (docker-archive)');
    }
    return out;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function tagLoaded(store: ImageStore, rec: ImageRecord, names: string[]): string[] {
  if (!names.length) return [`Loaded image ID: ${rec.id}`];
  return names.map((n) => {
    store.withLock(() => store.tag(rec.id, normalise(n)));
    return `Loaded image: ${familiar(n)}`;
  });
}

async function loadManifest(store: ImageStore, dir: string, digest: string, mediaType: string): Promise<ImageRecord> {
  const buf = readIn(dir, `blobs/sha256/${hex(digest)}`);
  let doc = JSON.parse(buf.toString()) as Manifest | Index;
  let mDigest = digest;
  let mType = mediaType;
  let mBuf = buf;
  if ('manifests' in doc) {
    // an index inside the layout: take this host's platform
    const arch = goArch();
    const pick = doc.manifests.find((m) => m.platform?.os === 'linux' && m.platform.architecture === arch) ?? doc.manifests[0];
    if (!pick) throw new TsrunError(`load: empty index ${digest}`);
    mDigest = pick.digest; mType = pick.mediaType;
    mBuf = readIn(dir, `blobs/sha256/${hex(pick.digest)}`);
    doc = JSON.parse(mBuf.toString()) as Manifest;
  }
  const m = doc as Manifest;
  const blob = async (d: string) => {
    if (!store.content.has(d)) await store.content.ingest(fs.createReadStream(within(dir, `blobs/sha256/${hex(d)}`)), { digest: d });
  };
  await blob(m.config.digest);
  const cfg = store.content.readJSON<ImageConfig>(m.config.digest);
  const layers: LayerRecord[] = [];
  let parent: string | undefined;
  let size = 0;
  for (let i = 0; i < m.layers.length; i++) {
    const l = m.layers[i];
    await blob(l.digest);
    const u = await store.layers.unpack(fs.createReadStream(store.content.path(l.digest)), l.mediaType, parent, cfg.rootfs?.diff_ids?.[i]);
    layers.push({ chainId: u.chainId, diffId: u.diffId, blobDigest: l.digest, mediaType: l.mediaType, size: l.size });
    parent = u.chainId;
    size += u.size;
  }
  store.content.put(mBuf, { digest: mDigest });
  const rec: ImageRecord = {
    id: m.config.digest, repoTags: [], repoDigests: [], manifestDigest: mDigest, manifestMediaType: mType || m.mediaType || MT.OCI_MANIFEST,
    layers, created: cfg.created ?? new Date().toISOString(), size,
  };
  store.withLock(() => store.put(rec));
  return store.find(rec.id) ?? rec;
}

function within(dir: string, rel: string): string {
  const p = path.resolve(dir, rel);
  if (!p.startsWith(dir + path.sep)) throw new TsrunError(`load: path "${rel}" escapes the archive`);
  return p;
}

function readIn(dir: string, rel: string): Buffer {
  try {
    return fs.readFileSync(within(dir, rel));
  } catch (e) {
    if (e instanceof TsrunError) throw e;
    throw new TsrunError(`load: the archive lacks ${rel}`);
  }
}

function readJSON<T>(dir: string, rel: string): T {
  try {
    return JSON.parse(readIn(dir, rel).toString()) as T;
  } catch (e) {
    if (e instanceof TsrunError) throw e;
    throw new TsrunError(`load: ${rel} is not valid JSON`);
  }
}

function isGzip(p: string): boolean {
  const fd = fs.openSync(p, 'r');
  try {
    const b = Buffer.alloc(2);
    fs.readSync(fd, b, 0, 2, 0);
    return b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    fs.closeSync(fd);
  }
}

