// Types for the OCI image spec, Docker's image formats, and the contracts between the image
// store (src/image/store), the registry client (src/image/registry) and the commands.

export const MT = {
  OCI_INDEX: 'application/vnd.oci.image.index.v1+json',
  OCI_MANIFEST: 'application/vnd.oci.image.manifest.v1+json',
  OCI_CONFIG: 'application/vnd.oci.image.config.v1+json',
  OCI_LAYER: 'application/vnd.oci.image.layer.v1.tar',
  OCI_LAYER_GZIP: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OCI_LAYER_ZSTD: 'application/vnd.oci.image.layer.v1.tar+zstd',
  DOCKER_LIST: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DOCKER_MANIFEST: 'application/vnd.docker.distribution.manifest.v2+json',
  DOCKER_CONFIG: 'application/vnd.docker.container.image.v1+json',
  DOCKER_LAYER_GZIP: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DOCKER_LAYER_FOREIGN: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

export interface Platform { architecture: string; os: string; variant?: string; 'os.version'?: string; 'os.features'?: string[] }

export interface Descriptor {
  mediaType: string;
  digest: string;          // "sha256:<64 hex>"
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
  urls?: string[];
}

export interface Manifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface Index {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ContainerConfig {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  /** docker's HEALTHCHECK: durations in nanoseconds */
  Healthcheck?: { Test?: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; Retries?: number };
}

export interface HistoryEntry { created?: string; created_by?: string; author?: string; comment?: string; empty_layer?: boolean }

/** The image configuration blob (OCI image-spec config.md; Docker's is a superset). */
export interface ImageConfig {
  architecture: string;
  os: string;
  variant?: string;
  created?: string;
  author?: string;
  config?: ContainerConfig;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: HistoryEntry[];
}

/** A parsed image reference: docker.io/library/busybox:latest, host:5000/ns/name@sha256:... */
export interface ImageRef {
  domain: string;       // "docker.io", "localhost:5000"
  path: string;         // "library/busybox"
  tag?: string;         // "latest" when neither tag nor digest was given
  digest?: string;
}

/** One layer of an image as the store keeps it. */
export interface LayerRecord {
  chainId: string;      // "sha256:..." (OCI chain id: identifies the layer with everything below it)
  diffId: string;       // digest of the uncompressed tar
  blobDigest: string;   // digest of the blob as pulled (compressed), in the content store
  mediaType: string;
  size: number;         // blob size
}

/** An image in the local store. Its id is the digest of its config blob. */
export interface ImageRecord {
  id: string;                 // config digest "sha256:..."
  repoTags: string[];         // "docker.io/library/busybox:latest" (normalised refs)
  repoDigests: string[];      // "docker.io/library/busybox@sha256:<manifest digest>"
  manifestDigest: string;     // the manifest this store holds for it (written to the content store)
  manifestMediaType: string;
  layers: LayerRecord[];      // lowest first
  created: string;            // from the config, or when stored
  size: number;               // unpacked size of all layers (bytes)
}

export type ProgressEvent =
  | { kind: 'resolve'; ref: string }
  | { kind: 'layer'; id: string; status: 'waiting' | 'downloading' | 'verifying' | 'extracting' | 'done' | 'exists' | 'mounted' | 'pushing' | 'pushed'; current?: number; total?: number }
  | { kind: 'digest'; digest: string }
  | { kind: 'status'; text: string };

export type Progress = (e: ProgressEvent) => void;
