// Where blobs came from (per registry): lets a push mount a blob from another repository of
// the same registry instead of uploading it. Filled by pulls and pushes in this process and
// from ImageRecord.repoDigests ("docker.io/library/busybox@sha256:...").
import type { ImageRecord } from '../types';

const sources = new Map<string, Set<string>>(); // blob digest -> "domain/path"

export function recordBlobSource(domain: string, path: string, digest: string): void {
  let s = sources.get(digest);
  if (!s) { s = new Set(); sources.set(digest, s); }
  s.delete(`${domain}/${path}`);
  s.add(`${domain}/${path}`); // most recent last
}

/** Repositories on `domain` known to hold the blob, most recently seen first, not `exceptPath`. */
export function blobSources(domain: string, digest: string, exceptPath?: string, rec?: ImageRecord): string[] {
  const out: string[] = [];
  const add = (full: string) => {
    if (!full.startsWith(domain + '/')) return;
    const p = full.slice(domain.length + 1);
    if (p && p !== exceptPath && !out.includes(p)) out.push(p);
  };
  for (const full of [...(sources.get(digest) ?? [])].reverse()) add(full);
  if (rec) {
    for (const rd of rec.repoDigests) add(rd.split('@')[0]);
  }
  return out;
}
