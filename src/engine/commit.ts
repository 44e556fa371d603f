// commit: a container's writable layer becomes a new image layer (deletions become whiteouts);
// export: a container's whole filesystem as a tarball.
import fs = require('fs');
import { TsrunError } from '../runtime/errors';
import { ImageStore, snapshotDirs, mountSnapshot, unmountSnapshot } from '../image/store';
import { addLayerFromTar, applyChanges, normalise, storeImage } from '../image/ops';
import type { ImageConfig, ImageRecord } from '../image/types';
import { findContainer } from './containers';

export async function commitContainer(root: string, key: string, ref: string | undefined, o: { changes?: string[]; message?: string; author?: string }): Promise<ImageRecord> {
  const c = findContainer(root, key);
  const store = new ImageStore(root);
  const base = store.find(c.imageId);
  const baseCfg: ImageConfig = base ? store.content.readJSON<ImageConfig>(base.id)
    : { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } };
  const { upper } = snapshotDirs(root, c.id);
  if (!fs.existsSync(upper)) throw new TsrunError(`container ${c.id.slice(0, 12)} has no writable layer`);
  const tags = ref ? [normalise(ref)] : [];
  const { file } = await store.layers.diffToTar(upper);
  try {
    const { layer, size } = await addLayerFromTar(store, file, c.chainId);
    const now = new Date().toISOString();
    const cfg: ImageConfig = {
      ...baseCfg,
      created: now,
      ...(o.author ? { author: o.author } : {}),
      config: applyChanges(baseCfg.config ?? {}, o.changes ?? []),
      rootfs: { type: 'layers', diff_ids: [...baseCfg.rootfs.diff_ids, layer.diffId] },
      history: [...(baseCfg.history ?? []), { created: now, created_by: c.args.join(' '), ...(o.message ? { comment: o.message } : {}) }],
    };
    return storeImage(store, cfg, [...(base?.layers ?? []), layer], tags, (base?.size ?? 0) + size);
  } finally {
    fs.rmSync(file, { force: true });
  }
}

export async function exportContainer(root: string, key: string, out: string | undefined): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const tar = require('tar') as typeof import('tar');
  const c = findContainer(root, key);
  const store = new ImageStore(root);
  const { merged } = snapshotDirs(root, c.id);
  const wasMounted = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === merged);
  if (!wasMounted) mountSnapshot(root, c.id, store.layers, c.chainId);
  try {
    if (!out && process.stdout.isTTY) throw new TsrunError('cowardly refusing to save to a terminal. Use the -o flag or redirect');
    const entries = fs.readdirSync(merged);
    if (out) await tar.create({ cwd: merged, file: out, preservePaths: false }, entries);
    else {
      await new Promise<void>((resolve, reject) => {
        const s = tar.create({ cwd: merged }, entries) as unknown as NodeJS.ReadableStream;
        s.on('error', reject);
        s.on('end', () => resolve());
        s.pipe(process.stdout);
      });
    }
  } finally {
    if (!wasMounted) unmountSnapshot(root, c.id);
  }
}
