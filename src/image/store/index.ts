// The image store: content (blobs by digest), layers (unpacked, by chain id), image records,
// and the overlay snapshots containers run on. State under <root>/image and <root>/containers.
export { ContentStore } from './content';
export { LayerStore, type LayerMeta, type UnpackOptions } from './layers';
export { ImageStore, type GcOptions } from './images';
export { snapshotDirs, mountSnapshot, unmountSnapshot, removeSnapshot } from './snapshot';
