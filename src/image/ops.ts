// Image operations behind the commands: inspect, history, tag, rmi, prune, import, commit.
import fs = require('fs');
import crypto = require('crypto');
import zlib = require('zlib');
import { TsrunError } from '../runtime/errors';
import { ImageStore } from './store';
import { parseRef, formatRef, familiarRef } from './ref';
import { MT, type HistoryEntry, type ImageConfig, type ImageRecord, type LayerRecord, type Manifest, type ContainerConfig } from './types';

export function openStore(root: string): ImageStore {
  return new ImageStore(root);
}

/** Find an image by id, short id, or reference (normalised); a clear "No such image" otherwise. */
export function resolveImage(store: ImageStore, key: string): ImageRecord {
  let rec = store.find(key);
  if (!rec) {
    try { rec = store.find(formatRef(parseRef(key))); } catch { /* not a reference: an id that does not exist */ }
  }
  if (!rec) throw new TsrunError(`No such image: ${key}`);
  return rec;
}

export function normalise(ref: string): string {
  try {
    return formatRef(parseRef(ref));
  } catch (e) {
    throw new TsrunError((e as Error).message);
  }
}

export function familiar(ref: string): string {
  try { return familiarRef(parseRef(ref)); } catch { return ref; }
}

/** docker image inspect's shape. */
export function inspectImage(store: ImageStore, rec: ImageRecord): Record<string, unknown> {
  const cfg = store.content.readJSON<ImageConfig>(rec.id);
  const c = cfg.config ?? {};
  return {
    Id: rec.id,
    RepoTags: rec.repoTags.map(familiar),
    RepoDigests: rec.repoDigests.map((d) => familiarDigest(d)),
    Parent: '',
    Comment: cfg.history?.length ? cfg.history[cfg.history.length - 1].comment ?? '' : '',
    Created: cfg.created ?? rec.created,
    DockerVersion: '',
    Author: cfg.author ?? '',
    Config: {
      Hostname: '', Domainname: '', User: c.User ?? '', AttachStdin: false, AttachStdout: false, AttachStderr: false,
      ExposedPorts: c.ExposedPorts, Tty: false, OpenStdin: false, StdinOnce: false,
      Env: c.Env ?? null, Cmd: c.Cmd ?? null, Image: '', Volumes: c.Volumes ?? null, WorkingDir: c.WorkingDir ?? '',
      Entrypoint: c.Entrypoint ?? null, OnBuild: null, Labels: c.Labels ?? null, ...(c.StopSignal ? { StopSignal: c.StopSignal } : {}),
    },
    Architecture: cfg.architecture,
    ...(cfg.variant ? { Variant: cfg.variant } : {}),
    Os: cfg.os,
    Size: rec.size,
    GraphDriver: { Name: 'overlay2', Data: { LowerDir: rec.layers.length ? store.layers.lowerDirs(rec.layers[rec.layers.length - 1].chainId).join(':') : '' } },
    RootFS: { Type: 'layers', Layers: cfg.rootfs.diff_ids },
    Metadata: { LastTagTime: '0001-01-01T00:00:00Z' },
  };
}

function familiarDigest(d: string): string {
  const at = d.indexOf('@');
  if (at < 0) return d;
  const name = d.slice(0, at);
  try { return familiarRef({ ...parseRef(name + ':x'), tag: undefined }) + d.slice(at); } catch { return d; }
}

export interface HistoryRow { id: string; created: string; createdBy: string; size: number; comment: string }

/** One row per history entry, newest first; only the top row carries the image id (docker's <missing>). */
export function history(store: ImageStore, rec: ImageRecord): HistoryRow[] {
  const cfg = store.content.readJSON<ImageConfig>(rec.id);
  const hist: HistoryEntry[] = cfg.history?.length ? cfg.history : cfg.rootfs.diff_ids.map(() => ({ created: cfg.created, created_by: '', empty_layer: false }));
  let li = 0;
  const rows: HistoryRow[] = hist.map((h) => {
    const size = h.empty_layer ? 0 : layerSize(store, rec.layers[li++]);
    return { id: '<missing>', created: h.created ?? '', createdBy: h.created_by ?? '', size, comment: h.comment ?? '' };
  });
  rows.reverse();
  if (rows.length) rows[0].id = rec.id;
  return rows;
}

function layerSize(store: ImageStore, l: LayerRecord | undefined): number {
  if (!l) return 0;
  return l.size;
}

/** Images (ids) that containers use: rmi refuses them without -f, prune keeps them. */
export function imagesInUse(root: string): Map<string, string> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { listContainers } = require('../engine/containers') as typeof import('../engine/containers');
  const m = new Map<string, string>();
  for (const c of listContainers(root)) if (!m.has(c.imageId)) m.set(c.imageId, c.id);
  return m;
}

export function chainsInUse(root: string): Set<string> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { listContainers } = require('../engine/containers') as typeof import('../engine/containers');
  return new Set(listContainers(root).map((c) => c.chainId).filter((x): x is string => !!x));
}

/** docker rmi: untag a reference; delete the image when no tag is left (or when named by id). */
export function removeImage(root: string, store: ImageStore, key: string, force: boolean): string[] {
  return store.withLock(() => {
    const out: string[] = [];
    const rec = resolveImage(store, key);
    const users = imagesInUse(root);
    const byRef = !isIdLike(key, rec);
    if (byRef && rec.repoTags.length > 1 && !force) {
      const ref = normalise(key);
      store.untag(ref);
      return [`Untagged: ${familiar(ref)}`];
    }
    if (!byRef && rec.repoTags.length > 1 && !force) {
      throw new TsrunError(`conflict: unable to delete ${rec.id.slice(7, 19)} (must be forced) - image is referenced in multiple repositories`);
    }
    const user = users.get(rec.id);
    if (user && !force) {
      throw new TsrunError(`conflict: unable to ${byRef ? `remove repository reference "${key}"` : `delete ${rec.id.slice(7, 19)}`} (must force) - container ${user.slice(0, 12)} is using its referenced image ${rec.id.slice(7, 19)}`);
    }
    for (const t of rec.repoTags) out.push(`Untagged: ${familiar(t)}`);
    for (const d of rec.repoDigests) out.push(`Untagged: ${familiarDigest(d)}`);
    store.remove(rec.id);
    out.push(`Deleted: ${rec.id}`);
    store.gc(chainsInUse(root));
    return out;
  });
}

function isIdLike(key: string, rec: ImageRecord): boolean {
  const hex = key.replace(/^sha256:/, '');
  return /^[0-9a-f]{4,64}$/.test(hex) && rec.id.slice(7).startsWith(hex) && !rec.repoTags.some((t) => familiar(t) === key || t === key);
}

export function prune(root: string, store: ImageStore, all: boolean, keep: (rec: ImageRecord) => boolean = () => true): { deleted: string[]; bytes: number } {
  return store.withLock(() => {
    const users = imagesInUse(root);
    const deleted: string[] = [];
    for (const rec of store.list()) {
      if (users.has(rec.id)) continue;
      if (!all && rec.repoTags.length) continue;
      if (!keep(rec)) continue;
      for (const t of rec.repoTags) deleted.push(`untagged: ${familiar(t)}`);
      store.remove(rec.id);
      deleted.push(`deleted: ${rec.id}`);
    }
    const freed = store.gc(chainsInUse(root));
    return { deleted, bytes: freed.bytes };
  });
}

export function tag(store: ImageStore, source: string, target: string): void {
  store.withLock(() => {
    const rec = resolveImage(store, source);
    const ref = parseRef(target);
    if (ref.digest) throw new TsrunError(`refusing to create a tag with a digest reference: ${target}`);
    store.tag(rec.id, formatRef(ref));
  });
}

function sha256(b: Buffer): string {
  return 'sha256:' + crypto.createHash('sha256').update(b).digest('hex');
}

/** Store config + manifest for a set of layers and record the image (import, commit, load). */
export function storeImage(store: ImageStore, cfg: ImageConfig, layers: LayerRecord[], tags: string[], sizes: number): ImageRecord {
  const cfgBuf = Buffer.from(JSON.stringify(cfg));
  const id = store.content.put(cfgBuf);
  const manifest: Manifest = {
    schemaVersion: 2, mediaType: MT.OCI_MANIFEST,
    config: { mediaType: MT.OCI_CONFIG, digest: id, size: cfgBuf.length },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.blobDigest, size: l.size })),
  };
  const mBuf = Buffer.from(JSON.stringify(manifest));
  const manifestDigest = store.content.put(mBuf);
  const rec: ImageRecord = {
    id, repoTags: tags, repoDigests: [], manifestDigest, manifestMediaType: MT.OCI_MANIFEST, layers,
    created: cfg.created ?? new Date().toISOString(), size: sizes,
  };
  store.withLock(() => store.put(rec));
  return rec;
}

/** A layer from an uncompressed tar file: gzip it into the content store, unpack it on `parent`. */
export async function addLayerFromTar(store: ImageStore, tarFile: string, parent: string | undefined): Promise<{ layer: LayerRecord; size: number }> {
  const gz = zlib.createGzip({ level: 1 });
  fs.createReadStream(tarFile).pipe(gz);
  const blobDigest = await store.content.ingest(gz);
  const { chainId, diffId, size } = await store.layers.unpack(fs.createReadStream(tarFile), MT.OCI_LAYER, parent);
  return { layer: { chainId, diffId, blobDigest, mediaType: MT.OCI_LAYER_GZIP, size: store.content.size(blobDigest) }, size };
}

/** docker import: a rootfs tarball becomes a one-layer image. */
export async function importTarball(store: ImageStore, file: string, ref: string | undefined, changes: string[], message?: string): Promise<ImageRecord> {
  const { layer, size } = await addLayerFromTar(store, file, undefined);
  const now = new Date().toISOString();
  const cfg: ImageConfig = {
    architecture: goArch(), os: 'linux', created: now, config: applyChanges({}, changes),
    rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    history: [{ created: now, created_by: '', comment: message ?? `Imported from ${file === '-' ? '-' : file}` }],
  };
  return storeImage(store, cfg, [layer], ref ? [normalise(ref)] : [], size);
}

export function goArch(): string {
  return ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[process.arch] ?? process.arch;
}

/** --change "CMD [...]" / "ENV K=V" / ... (the Dockerfile instructions docker commit and import accept). */
export function applyChanges(c: ContainerConfig, changes: string[]): ContainerConfig {
  const out: ContainerConfig = { ...c };
  for (const ch of changes) {
    const m = /^\s*(\w+)\s+(.*)$/s.exec(ch);
    if (!m) throw new TsrunError(`invalid --change "${ch}": use e.g. "CMD [\\"sh\\"]" or "ENV K=V"`);
    const [, instr, rest] = m;
    const list = () => {
      const t = rest.trim();
      if (t.startsWith('[')) {
        try { return JSON.parse(t) as string[]; } catch { throw new TsrunError(`invalid --change "${ch}": bad JSON array`); }
      }
      return ['/bin/sh', '-c', t];
    };
    switch (instr.toUpperCase()) {
      case 'CMD': out.Cmd = list(); break;
      case 'ENTRYPOINT': out.Entrypoint = list(); break;
      case 'ENV': {
        const kv = rest.includes('=') ? rest.trim() : rest.trim().replace(/\s+/, '=');
        const key = kv.slice(0, kv.indexOf('='));
        out.Env = [...(out.Env ?? []).filter((e) => !e.startsWith(key + '=')), kv];
        break;
      }
      case 'WORKDIR': out.WorkingDir = rest.trim(); break;
      case 'USER': out.User = rest.trim(); break;
      case 'EXPOSE': {
        out.ExposedPorts = { ...(out.ExposedPorts ?? {}) };
        for (const p of rest.trim().split(/\s+/)) out.ExposedPorts[p.includes('/') ? p : p + '/tcp'] = {};
        break;
      }
      case 'LABEL': {
        out.Labels = { ...(out.Labels ?? {}) };
        const mm = /^([^=\s]+)=?"?(.*?)"?$/.exec(rest.trim());
        if (mm) out.Labels[mm[1]] = mm[2];
        break;
      }
      case 'VOLUME': {
        out.Volumes = { ...(out.Volumes ?? {}) };
        for (const v of rest.trim().startsWith('[') ? list() : rest.trim().split(/\s+/)) out.Volumes[v] = {};
        break;
      }
      case 'STOPSIGNAL': out.StopSignal = rest.trim(); break;
      default: throw new TsrunError(`invalid --change "${ch}": ${instr} is not supported (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL)`);
    }
  }
  return out;
}

export { sha256 };
