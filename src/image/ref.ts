// Image references, normalised the way Docker does (github.com/distribution/reference):
//
//   busybox                      -> docker.io/library/busybox:latest
//   user/app:1                   -> docker.io/user/app:1
//   localhost:5000/ns/name:tag   -> localhost:5000/ns/name:tag
//   name@sha256:<64 hex>         -> docker.io/library/name@sha256:...
//   name:tag@sha256:<64 hex>     -> both (the digest is what gets pulled)
//
// The first component of a name is a registry host when it contains '.' or ':' or is
// "localhost" (or has an upper-case letter, which a repository path cannot have).
import type { ImageRef } from './types';
import { TsrunError } from '../runtime/errors';

export const DEFAULT_DOMAIN = 'docker.io';
export const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
export const DEFAULT_REGISTRY_HOST = 'registry-1.docker.io';
const OFFICIAL_PREFIX = 'library/';

const NAME_MAX = 255;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const PORT = /^[0-9]+$/;
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([0-9a-fA-F]{32,})$/;
const DIGEST_HEX: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

function invalid(why: string): TsrunError {
  return new TsrunError(`invalid reference format: ${why}`);
}

/** Checks "host", "host:port", "[::1]:port", "a.b.c". */
function validDomain(d: string): boolean {
  let host = d;
  let port: string | undefined;
  if (d.startsWith('[')) {
    const end = d.indexOf(']');
    if (end < 0) return false;
    const v6 = d.slice(1, end);
    if (!/^[0-9a-fA-F:.]+$/.test(v6) || !v6.includes(':')) return false;
    const rest = d.slice(end + 1);
    if (rest === '') return true;
    if (!rest.startsWith(':')) return false;
    return PORT.test(rest.slice(1));
  }
  const colon = d.lastIndexOf(':');
  if (colon >= 0) { host = d.slice(0, colon); port = d.slice(colon + 1); }
  if (port !== undefined && !PORT.test(port)) return false;
  return host.split('.').every((c) => DOMAIN_COMPONENT.test(c));
}

export function validateDigest(d: string): string {
  const m = DIGEST.exec(d);
  if (!m) throw invalid(`invalid digest "${d}"`);
  const want = DIGEST_HEX[m[1]];
  if (want === undefined) throw invalid(`unsupported digest algorithm "${m[1]}"`);
  if (m[2].length !== want) throw invalid(`invalid ${m[1]} digest "${d}": want ${want} hex characters`);
  return `${m[1]}:${m[2].toLowerCase()}`;
}

/** Parses and normalises an image reference. Throws "invalid reference format: <why>". */
export function parseRef(input: string): ImageRef {
  const s = input.trim();
  if (s === '') throw invalid('empty reference');
  if (/\s/.test(s)) throw invalid(`"${s}" contains whitespace`);
  if (s.includes('://')) throw invalid(`"${s}": a reference has no scheme`);

  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = validateDigest(rest.slice(at + 1));
    rest = rest.slice(0, at);
  }
  // A tag is after the last ':' that comes after the last '/' (a ':' before it is a port).
  let tag: string | undefined;
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalid(`invalid tag "${tag}"`);
  }
  if (rest === '') throw invalid(`"${s}": no repository name`);

  let domain = DEFAULT_DOMAIN;
  let path = rest;
  const first = rest.indexOf('/');
  if (first >= 0) {
    const c = rest.slice(0, first);
    if (c.includes('.') || c.includes(':') || c === 'localhost' || c !== c.toLowerCase()) {
      if (!validDomain(c)) throw invalid(`invalid registry host "${c}"`);
      domain = c;
      path = rest.slice(first + 1);
    }
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (path === '') throw invalid(`"${s}": no repository name`);
  if (path !== path.toLowerCase()) throw invalid('repository name must be lowercase');
  for (const comp of path.split('/')) {
    if (!PATH_COMPONENT.test(comp)) {
      throw invalid(comp === '' ? `"${s}": empty path component` : `invalid repository name component "${comp}"`);
    }
  }
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = OFFICIAL_PREFIX + path;
  if (domain.length + 1 + path.length > NAME_MAX) throw invalid(`repository name must not be more than ${NAME_MAX} characters`);
  if (tag === undefined && digest === undefined) tag = 'latest';
  const ref: ImageRef = { domain, path };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** "docker.io/library/busybox" */
export function repoName(r: ImageRef): string {
  return `${r.domain}/${r.path}`;
}

function suffix(r: ImageRef): string {
  return (r.tag !== undefined ? `:${r.tag}` : '') + (r.digest !== undefined ? `@${r.digest}` : '');
}

/** The fully qualified form: "docker.io/library/busybox:latest". */
export function formatRef(r: ImageRef): string {
  return repoName(r) + suffix(r);
}

/** The repository as Docker prints it: "busybox", "user/app", "localhost:5000/x". */
export function familiarName(r: ImageRef): string {
  if (r.domain !== DEFAULT_DOMAIN) return repoName(r);
  return r.path.startsWith(OFFICIAL_PREFIX) && r.path.indexOf('/', OFFICIAL_PREFIX.length) < 0
    ? r.path.slice(OFFICIAL_PREFIX.length) : r.path;
}

/** As Docker prints it: "busybox:latest", "user/app:1", "localhost:5000/x:y". */
export function familiarRef(r: ImageRef): string {
  return familiarName(r) + suffix(r);
}

/** The reference with a tag or digest replaced: withTag(r, 'v2'), withDigest(r, 'sha256:...'). */
export function withTag(r: ImageRef, tag: string): ImageRef {
  return { domain: r.domain, path: r.path, tag };
}
export function withDigest(r: ImageRef, digest: string): ImageRef {
  return { domain: r.domain, path: r.path, digest };
}

/** The host[:port] that serves the registry API for a reference's domain. */
export function registryHost(domain: string): string {
  return domain === DEFAULT_DOMAIN || domain === LEGACY_DEFAULT_DOMAIN ? DEFAULT_REGISTRY_HOST : domain;
}

/** Parses "docker.io", "https://index.docker.io/v1/", "localhost:5000" into a reference domain. */
export function normaliseRegistry(s: string): string {
  let d = s.trim().replace(/^[a-z]+:\/\//i, '');
  d = d.replace(/\/.*$/, '');
  if (d === '' ) throw new TsrunError(`invalid registry "${s}"`);
  if (d === LEGACY_DEFAULT_DOMAIN || d === DEFAULT_REGISTRY_HOST) return DEFAULT_DOMAIN;
  if (!validDomain(d)) throw new TsrunError(`invalid registry "${s}"`);
  return d.toLowerCase();
}
