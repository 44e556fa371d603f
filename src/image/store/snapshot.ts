// A container's overlay snapshot: <root>/containers/<id>/{upper,work,rootfs} (rootfs is the merged
// view), over the image's layer diff dirs. The container dir may hold other files (the engine's
// records): only the snapshot's own dirs are created and removed here.
import fs = require('fs');
import path = require('path');
import { TsrunError } from '../../runtime/errors';
import { mountOverlay, umount2, MNT_DETACH } from '../../kernel/fsops';
import type { LayerStore } from './layers';
import { isMountPoint, mountsUnder, errCode, msg } from './util';

/** overlayfs features that a layer diff (diffToTar) could not represent: kept off. */
const RW_OPTIONS = ['index=off', 'redirect_dir=off', 'metacopy=off'];

function containerDir(root: string, containerId: string): string {
  if (!containerId || containerId === '.' || containerId === '..' || containerId.includes('/') || containerId.includes('\0')) {
    throw new TsrunError(`invalid container id "${containerId}"`);
  }
  return path.join(root, 'containers', containerId);
}

export function snapshotDirs(root: string, containerId: string): { upper: string; work: string; merged: string } {
  const dir = containerDir(root, containerId);
  return { upper: path.join(dir, 'upper'), work: path.join(dir, 'work'), merged: path.join(dir, 'rootfs') };
}

/**
 * Mount the snapshot (idempotent: an already mounted rootfs is returned as it is) and return the
 * merged dir. chainId undefined: an image without layers (an empty lower dir). readonly: no
 * upper/work dirs, a read-only mount.
 */
export function mountSnapshot(root: string, containerId: string, layers: LayerStore, chainId: string | undefined, opts: { readonly?: boolean } = {}): string {
  const d = snapshotDirs(root, containerId);
  const dir = path.dirname(d.merged);
  if (isMountPoint(d.merged)) return d.merged;
  const lowers = chainId ? layers.lowerDirs(chainId) : [];
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o711 });
    if (!lowers.length || (opts.readonly && lowers.length === 1)) {
      // overlayfs wants two lower dirs when there is no upper dir
      const empty = path.join(dir, 'empty');
      fs.mkdirSync(empty, { recursive: true, mode: 0o755 });
      lowers.push(empty);
    }
    fs.mkdirSync(d.merged, { recursive: true, mode: 0o755 });
    if (opts.readonly) {
      mountOverlay(d.merged, { lowers, readonly: true });
      return d.merged;
    }
    if (!fs.existsSync(d.upper)) {
      // the upper dir is the merged root's inode: it takes the image root's owner and mode
      const top = fs.statSync(lowers[0]);
      const tmp = d.upper + '.tmp';
      fs.rmSync(tmp, { recursive: true, force: true });
      fs.mkdirSync(tmp, 0o755);
      fs.chownSync(tmp, top.uid, top.gid);
      fs.chmodSync(tmp, top.mode & 0o7777);
      fs.renameSync(tmp, d.upper);
    }
    fs.mkdirSync(d.work, { recursive: true, mode: 0o700 });
    mountOverlay(d.merged, { lowers, upper: d.upper, work: d.work, options: RW_OPTIONS });
    return d.merged;
  } catch (e) {
    if (e instanceof TsrunError) throw e;
    throw new TsrunError(`snapshot of container ${containerId}: ${msg(e)}`);
  }
}

/** Unmount the snapshot's rootfs if mounted (lazily when busy). Idempotent. */
export function unmountSnapshot(root: string, containerId: string): void {
  const { merged } = snapshotDirs(root, containerId);
  for (let i = 0; i < 16 && isMountPoint(merged); i++) {
    const r = umount2(merged, 0, ['EBUSY', 'EINVAL', 'ENOENT']);
    if (r === 0) continue;
    if (r === -16 /* EBUSY */) { umount2(merged, MNT_DETACH, ['EINVAL', 'ENOENT']); continue; }
    break; // not a mount point (any more)
  }
  if (isMountPoint(merged)) throw new TsrunError(`unmount ${merged}: still mounted`);
}

/** Unmount and delete the snapshot's dirs (and the container dir when nothing else is left in it). */
export function removeSnapshot(root: string, containerId: string): void {
  unmountSnapshot(root, containerId);
  const d = snapshotDirs(root, containerId);
  const dir = path.dirname(d.merged);
  const left = mountsUnder(dir);
  if (left.length) throw new TsrunError(`remove snapshot ${dir}: still mounted: ${left.join(', ')}`);
  for (const p of [d.merged, d.upper, d.upper + '.tmp', d.work, path.join(dir, 'empty')]) {
    try {
      fs.rmSync(p, { recursive: true, force: true });
    } catch (e) {
      throw new TsrunError(`remove snapshot: ${p}: ${msg(e)}`);
    }
  }
  try {
    fs.rmdirSync(dir);
  } catch (e) {
    const c = errCode(e);
    if (c !== 'ENOENT' && c !== 'ENOTEMPTY' && c !== 'EEXIST') throw new TsrunError(`remove snapshot: ${dir}: ${msg(e)}`);
  }
}
