// An OCI distribution (Docker registry v2) client over Node's http/https.
//
//  - HTTPS by default; plain HTTP for localhost, 127.0.0.0/8 and ::1; registries named in
//    TSRUN_INSECURE_REGISTRIES (comma separated) get HTTPS without certificate checks and
//    fall back to HTTP when the TLS handshake fails or the port refuses.
//  - Auth: anonymous, Basic, and the Bearer token flow (401 + WWW-Authenticate: Bearer
//    realm,service,scope -> GET realm?service&scope, with Basic credentials when known),
//    tokens cached per scope set; credentials from config.json (see auth.ts).
//  - Retries (3 tries, backoff, Retry-After honoured up to a few seconds) on connection
//    resets, 5xx and 429, for requests whose body can be sent again.
import http = require('http');
import type * as HttpsT from 'https';
import crypto = require('crypto');
import { URL } from 'url';
import type { Readable } from 'stream';
import { MT } from '../types';
import { registryHost } from '../ref';
import { basicHeader, Challenge, Credentials, loadCredentials, parseChallenges } from './auth';
import { DigestMismatchError, errorFromResponse, isRetryable, netError, RegistryError } from './errors';

const MANIFEST_ACCEPT = [MT.OCI_INDEX, MT.OCI_MANIFEST, MT.DOCKER_LIST, MT.DOCKER_MANIFEST].join(', ');
const MAX_MANIFEST = 4 << 20;
const MAX_ERROR_BODY = 64 << 10;
const TRIES = 3;
const USER_AGENT = 'tsrun/0.1.0';

const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
// https (and tls) cost ~8 ms to load: only for registries that speak it
let httpsMod: typeof HttpsT | undefined;
let httpsAgent: HttpsT.Agent | undefined;
let insecureHttpsAgent: HttpsT.Agent | undefined;
function https(insecure: boolean): { mod: typeof HttpsT; agent: HttpsT.Agent } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  httpsMod ??= require('https') as typeof HttpsT;
  httpsAgent ??= new httpsMod.Agent({ keepAlive: true, maxSockets: 16 });
  insecureHttpsAgent ??= new httpsMod.Agent({ keepAlive: true, maxSockets: 16, rejectUnauthorized: false });
  return { mod: httpsMod, agent: insecure ? insecureHttpsAgent : httpsAgent };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function hostOnly(hostport: string): string {
  if (hostport.startsWith('[')) return hostport.slice(1, hostport.indexOf(']'));
  const i = hostport.lastIndexOf(':');
  return i >= 0 && hostport.indexOf(':') === i ? hostport.slice(0, i) : hostport;
}

export function isLoopback(hostport: string): boolean {
  const h = hostOnly(hostport).toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** Registries named in TSRUN_INSECURE_REGISTRIES ("host:port,host2"). */
export function isInsecureRegistry(domain: string): boolean {
  const list = (process.env.TSRUN_INSECURE_REGISTRIES ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  const d = domain.toLowerCase();
  return list.includes(d) || list.includes(hostOnly(d));
}

export function sha256(buf: Buffer | Uint8Array): string {
  return 'sha256:' + crypto.createHash('sha256').update(buf).digest('hex');
}

/** Checks a buffer against "algo:hex" (sha256, sha384, sha512). */
export function verifyDigest(what: string, buf: Buffer, digest: string): void {
  const [algo, hex] = digest.split(':');
  if (!['sha256', 'sha384', 'sha512'].includes(algo)) throw new RegistryError(`${what}: unsupported digest algorithm ${algo}`);
  const got = crypto.createHash(algo).update(buf).digest('hex');
  if (got !== hex) throw new DigestMismatchError(what, digest, `${algo}:${got}`);
}

export type Body = Buffer | { length: number; open: () => Readable };

export interface RequestOptions {
  headers?: Record<string, string>;
  body?: Body;
  /** Token scopes the request needs ("repository:ns/name:pull"). */
  scopes?: string[];
  /** Statuses that are not errors (default 2xx). */
  ok?: (status: number) => boolean;
  /** Follow redirects (GET/HEAD); default true. */
  redirect?: boolean;
  /** What failed, for the error message ("manifest for busybox:latest"). */
  what?: string;
  /** No retries (the caller retries a whole operation). */
  noRetry?: boolean;
  timeoutMs?: number;
}

export interface Response { status: number; headers: http.IncomingHttpHeaders; res: http.IncomingMessage; url: URL }

export interface ClientOptions {
  /** Credentials; undefined: from config.json; null: anonymous. */
  credentials?: Credentials | null;
  /** Force plain HTTP (true) or HTTPS (false); default by host, see above. */
  plainHttp?: boolean;
  userAgent?: string;
  /** What another client learnt (a worker thread's copy of the pull's client): see state(). */
  state?: ClientState;
}

/** A client's auth state and scheme, as plain data (structured-clonable). */
export interface ClientState {
  scheme: 'http' | 'https';
  credentials: Credentials | null;
  challenge?: Challenge;
  tokens: [string, { token: string; expires: number }][];
}

export interface Manifest { bytes: Buffer; mediaType: string; digest: string }

/** Reads a response body into memory (at most `limit` bytes). */
export async function readBody(res: Readable, limit: number, what = 'response'): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res) {
    n += (c as Buffer).length;
    if (n > limit) { res.destroy(); throw new RegistryError(`${what}: larger than ${limit} bytes`); }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks, n);
}

function drain(res: http.IncomingMessage): void {
  res.resume();
  res.on('error', () => { /* ignore */ });
}

export class RegistryClient {
  readonly domain: string;
  readonly host: string;
  private scheme: 'http' | 'https';
  private readonly fallbackToHttp: boolean;
  private credentials: Credentials | undefined;
  private challenge: Challenge | undefined;
  private readonly tokens = new Map<string, { token: string; expires: number }>();
  private readonly userAgent: string;
  private readonly insecure: boolean;

  constructor(domain: string, opts: ClientOptions = {}) {
    this.domain = domain;
    this.host = registryHost(domain);
    const insecure = isInsecureRegistry(domain) || isInsecureRegistry(this.host);
    if (opts.plainHttp !== undefined) this.scheme = opts.plainHttp ? 'http' : 'https';
    else this.scheme = isLoopback(this.host) ? 'http' : 'https';
    this.fallbackToHttp = insecure && opts.plainHttp === undefined && this.scheme === 'https';
    this.insecure = insecure;
    if (opts.credentials !== undefined) this.credentials = opts.credentials ?? undefined;
    else {
      // An unreadable config.json does not stop an anonymous pull (docker only warns either).
      try { this.credentials = loadCredentials(domain); } catch { this.credentials = undefined; }
    }
    this.userAgent = opts.userAgent ?? USER_AGENT;
    if (opts.state) {
      this.scheme = opts.state.scheme;
      this.credentials = opts.state.credentials ?? undefined;
      this.challenge = opts.state.challenge;
      for (const [k, v] of opts.state.tokens) this.tokens.set(k, v);
    }
  }

  /** The scheme, credentials, challenge and tokens, for a copy of this client in another thread. */
  state(): ClientState {
    return { scheme: this.scheme, credentials: this.credentials ?? null, challenge: this.challenge, tokens: [...this.tokens] };
  }

  get baseUrl(): string {
    return `${this.scheme}://${this.host}`;
  }

  url(p: string): URL {
    return new URL(p, this.baseUrl);
  }

  /** One HTTP exchange (no auth, no retry, no redirect). */
  private send(method: string, url: URL, headers: Record<string, string>, body: Body | undefined, timeoutMs: number): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      const isHttps = url.protocol === 'https:';
      const sec = isHttps ? https(this.insecure && url.host === this.host) : undefined;
      const mod = sec ? sec.mod : http;
      const agent = sec ? sec.agent : httpAgent;
      const h: Record<string, string> = { 'User-Agent': this.userAgent, ...headers };
      if (body !== undefined) h['Content-Length'] = String(body.length);
      const req = mod.request(url, { method, headers: h, agent });
      let done = false;
      req.setTimeout(timeoutMs, () => {
        const e = new Error(`${method} ${url.href}: timed out after ${timeoutMs / 1000}s`) as NodeJS.ErrnoException;
        e.code = 'ETIMEDOUT';
        req.destroy(e);
      });
      req.on('response', (res) => { done = true; resolve(res); });
      req.on('error', (e) => { if (!done) reject(e); });
      if (body === undefined) req.end();
      else if (Buffer.isBuffer(body)) req.end(body);
      else {
        const src = body.open();
        src.on('error', (e) => req.destroy(e));
        src.pipe(req);
      }
    });
  }

  private async token(scopes: string[], ch: Challenge): Promise<string> {
    const key = [...new Set(scopes)].sort().join(' ');
    const cached = this.tokens.get(key);
    if (cached && cached.expires > Date.now()) return cached.token;
    const realm = ch.params.realm;
    if (!realm) throw new RegistryError(`${this.domain}: bearer challenge without a realm`);
    let u: URL;
    try { u = new URL(realm); } catch { throw new RegistryError(`${this.domain}: invalid token realm "${realm}"`); }
    if (ch.params.service) u.searchParams.set('service', ch.params.service);
    for (const s of key ? key.split(' ') : []) u.searchParams.append('scope', s);
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (this.credentials) headers.Authorization = basicHeader(this.credentials);
    let res: http.IncomingMessage | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        res = await this.send('GET', u, headers, undefined, 30_000);
        if ((res.statusCode ?? 0) >= 500 && attempt < TRIES) { drain(res); await sleep(200 * attempt); continue; }
        break;
      } catch (e) {
        if (attempt >= TRIES || !isRetryable(e)) throw e;
        await sleep(200 * attempt);
      }
    }
    const body = await readBody(res, 1 << 20, 'token');
    if (res.statusCode !== 200) {
      const e = errorFromResponse(res.statusCode ?? 0, body);
      if (res.statusCode === 401 || res.statusCode === 403) {
        throw new RegistryError(this.credentials ? `unauthorized: incorrect username or password` : e.message, res.statusCode, e.code);
      }
      throw new RegistryError(`get token from ${u.host}: ${e.message}`, res.statusCode, e.code);
    }
    let j: { token?: string; access_token?: string; expires_in?: number };
    try { j = JSON.parse(body.toString('utf8')); } catch { throw new RegistryError(`get token from ${u.host}: invalid JSON`); }
    const token = j.token || j.access_token;
    if (!token) throw new RegistryError(`get token from ${u.host}: no token in the response`);
    const life = Math.max(60, Number(j.expires_in) || 60) * 1000;
    this.tokens.set(key, { token, expires: Date.now() + life - 10_000 });
    return token;
  }

  private async authHeader(scopes: string[]): Promise<string | undefined> {
    const ch = this.challenge;
    if (!ch) return undefined;
    if (ch.scheme === 'basic') return this.credentials ? basicHeader(this.credentials) : undefined;
    return 'Bearer ' + await this.token(scopes, ch);
  }

  /**
   * A request with auth, redirects and retries. Resolves with the response (body unread)
   * when its status is ok; otherwise throws the registry's error.
   */
  async request(method: string, pathOrUrl: string | URL, opts: RequestOptions = {}): Promise<Response> {
    const replayable = opts.body === undefined || Buffer.isBuffer(opts.body) || typeof opts.body.open === 'function';
    const tries = opts.noRetry || !replayable ? 1 : TRIES;
    let lastErr: unknown;
    for (let attempt = 1; attempt <= tries; attempt++) {
      try {
        return await this.requestOnce(method, pathOrUrl, opts);
      } catch (e) {
        lastErr = e;
        if (attempt >= tries || !isRetryable(e)) throw e;
        const after = (e as { retryAfterMs?: number }).retryAfterMs;
        await sleep(after !== undefined ? Math.min(after, 5_000) : 250 * 2 ** (attempt - 1));
      }
    }
    throw lastErr;
  }

  private async requestOnce(method: string, pathOrUrl: string | URL, opts: RequestOptions): Promise<Response> {
    const scopes = [...(opts.scopes ?? [])];
    const ok = opts.ok ?? ((s: number) => s >= 200 && s < 300);
    let url = typeof pathOrUrl === 'string' ? this.url(pathOrUrl) : pathOrUrl;
    let authTried = false;
    let redirects = 0;
    for (;;) {
      const onRegistry = url.host === this.host;
      const headers: Record<string, string> = { ...opts.headers };
      if (onRegistry) {
        const a = await this.authHeader(scopes);
        if (a) headers.Authorization = a;
      }
      let res: http.IncomingMessage;
      try {
        res = await this.send(method, url, headers, opts.body, opts.timeoutMs ?? 120_000);
      } catch (e) {
        if (onRegistry && this.fallbackToHttp && url.protocol === 'https:' && isTlsOrRefused(e)) {
          this.scheme = 'http';
          url = new URL(url.href.replace(/^https:/, 'http:'));
          continue;
        }
        throw netError(e, `${url.protocol}//${url.host}${url.pathname}`, !this.insecure);
      }
      const status = res.statusCode ?? 0;
      if (status === 401 && onRegistry && !authTried) {
        const ch = parseChallenges(res.headers['www-authenticate']);
        if (ch && (ch.scheme === 'bearer' || this.credentials)) {
          drain(res);
          authTried = true;
          if (ch.scheme === 'bearer' && ch.params.scope) {
            for (const s of ch.params.scope.split(' ')) if (!scopes.includes(s)) scopes.push(s);
          }
          this.challenge = ch;
          // A token for these scopes did not do: get a fresh one.
          if (ch.scheme === 'bearer') this.tokens.delete([...new Set(scopes)].sort().join(' '));
          continue;
        }
        const body = await readBody(res, MAX_ERROR_BODY, 'error').catch(() => undefined);
        throw errorFromResponse(401, method === 'HEAD' ? undefined : body, opts.what);
      }
      if ([301, 302, 303, 307, 308].includes(status) && opts.redirect !== false && res.headers.location) {
        drain(res);
        if (++redirects > 10) throw new RegistryError(`${opts.what ?? url.href}: too many redirects`);
        url = new URL(res.headers.location, url);
        if (status === 303) method = 'GET';
        continue;
      }
      if (!ok(status)) {
        const body = await readBody(res, MAX_ERROR_BODY, 'error').catch(() => undefined);
        const err = errorFromResponse(status, method === 'HEAD' ? undefined : body, opts.what);
        const ra = res.headers['retry-after'];
        if (status === 429 && ra) {
          const secs = Number(ra);
          (err as { retryAfterMs?: number }).retryAfterMs = Number.isFinite(secs) ? secs * 1000 : Math.max(0, Date.parse(ra) - Date.now());
        }
        throw err;
      }
      return { status, headers: res.headers, res, url };
    }
  }

  /** GET /v2/: checks that the registry answers (and that the credentials work). */
  async ping(): Promise<void> {
    const r = await this.request('GET', '/v2/', { what: `${this.domain}` });
    drain(r.res);
  }

  /**
   * Fetches a manifest (index, manifest, Docker list or v2 manifest) by tag or digest.
   * When `reference` is a digest the bytes are checked against it.
   */
  async getManifest(repo: string, reference: string, what?: string): Promise<Manifest> {
    const r = await this.request('GET', `/v2/${repo}/manifests/${reference}`, {
      headers: { Accept: MANIFEST_ACCEPT }, scopes: [`repository:${repo}:pull`], what,
    });
    const bytes = await readBody(r.res, MAX_MANIFEST, `manifest for ${repo}`);
    let digest: string;
    if (reference.includes(':')) {
      verifyDigest(`manifest ${reference}`, bytes, reference);
      digest = reference;
    } else {
      digest = sha256(bytes);
      const hd = r.headers['docker-content-digest'];
      if (typeof hd === 'string' && hd.startsWith('sha256:') && hd !== digest) {
        throw new DigestMismatchError(`manifest for ${repo}:${reference}`, hd, digest);
      }
    }
    let mediaType = String(r.headers['content-type'] ?? '').split(';')[0].trim();
    let parsed: { mediaType?: string; schemaVersion?: number; manifests?: unknown; layers?: unknown };
    try { parsed = JSON.parse(bytes.toString('utf8')); } catch { throw new RegistryError(`manifest for ${repo}:${reference}: invalid JSON`); }
    if (parsed.schemaVersion === 1) {
      throw new RegistryError(`manifest for ${repo}:${reference}: Docker image format v1 (schema 1) is not supported`);
    }
    const known = [MT.OCI_INDEX, MT.OCI_MANIFEST, MT.DOCKER_LIST, MT.DOCKER_MANIFEST] as string[];
    if (!known.includes(mediaType)) {
      mediaType = parsed.mediaType && known.includes(parsed.mediaType) ? parsed.mediaType
        : Array.isArray(parsed.manifests) ? MT.OCI_INDEX : MT.OCI_MANIFEST;
    }
    return { bytes, mediaType, digest };
  }

  /** GET a blob: the response stream (after redirects). */
  async getBlob(repo: string, digest: string, opts: { noRetry?: boolean } = {}): Promise<{ stream: http.IncomingMessage; size?: number }> {
    const r = await this.request('GET', `/v2/${repo}/blobs/${digest}`, { scopes: [`repository:${repo}:pull`], what: `blob ${digest}`, noRetry: opts.noRetry });
    const len = r.headers['content-length'];
    return { stream: r.res, size: len !== undefined ? Number(len) : undefined };
  }

  /** GET a small blob (a config) into memory and verify it. */
  async getBlobBytes(repo: string, digest: string, limit = 64 << 20): Promise<Buffer> {
    for (let attempt = 1; ; attempt++) {
      try {
        const { stream } = await this.getBlob(repo, digest);
        const bytes = await readBody(stream, limit, `blob ${digest}`);
        verifyDigest(`blob ${digest}`, bytes, digest);
        return bytes;
      } catch (e) {
        if (attempt >= TRIES || !isRetryable(e)) throw e;
        await sleep(250 * 2 ** (attempt - 1));
      }
    }
  }

  /** HEAD a blob: its size when the repository has it, undefined when not. */
  async blobExists(repo: string, digest: string): Promise<number | undefined> {
    const r = await this.request('HEAD', `/v2/${repo}/blobs/${digest}`, {
      scopes: [`repository:${repo}:pull,push`], ok: (s) => (s >= 200 && s < 300) || s === 404, what: `blob ${digest}`,
    });
    drain(r.res);
    if (r.status === 404) return undefined;
    const len = r.headers['content-length'];
    return len !== undefined ? Number(len) : 0;
  }

  /**
   * Tries a cross-repository mount. Returns 'mounted', or the upload location the registry
   * opened instead (202): the blob then has to be uploaded there.
   */
  async mountBlob(repo: string, digest: string, from: string): Promise<'mounted' | URL> {
    const q = `mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`;
    const r = await this.request('POST', `/v2/${repo}/blobs/uploads/?${q}`, {
      scopes: [`repository:${repo}:pull,push`, `repository:${from}:pull`], body: Buffer.alloc(0), what: `mount ${digest} from ${from}`,
    });
    drain(r.res);
    if (r.status === 201) return 'mounted';
    return this.location(r, 'mount');
  }

  private location(r: Response, what: string): URL {
    const loc = r.headers.location;
    if (!loc) throw new RegistryError(`${what}: the registry sent no upload location`);
    return new URL(loc, r.url);
  }

  /** POST /v2/<repo>/blobs/uploads/: an upload session's location. */
  async startUpload(repo: string): Promise<URL> {
    const r = await this.request('POST', `/v2/${repo}/blobs/uploads/`, {
      scopes: [`repository:${repo}:pull,push`], body: Buffer.alloc(0), what: `start upload to ${repo}`,
    });
    drain(r.res);
    return this.location(r, 'start upload');
  }

  /** A monolithic PUT of a whole blob to an upload location. */
  async putBlob(repo: string, location: URL, digest: string, body: Body): Promise<void> {
    const u = new URL(location.href);
    u.searchParams.set('digest', digest);
    const r = await this.request('PUT', u, {
      scopes: [`repository:${repo}:pull,push`], body, headers: { 'Content-Type': 'application/octet-stream' },
      what: `upload blob ${digest}`, redirect: false, noRetry: true,
    });
    drain(r.res);
    const got = r.headers['docker-content-digest'];
    if (typeof got === 'string' && got !== digest) throw new DigestMismatchError(`upload blob ${digest}`, digest, got);
  }

  /** Uploads a blob: POST then PUT (the whole upload again when it fails with a retryable error). */
  async uploadBlob(repo: string, digest: string, body: Body, location?: URL): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const loc = location ?? await this.startUpload(repo);
        location = undefined;
        await this.putBlob(repo, loc, digest, body);
        return;
      } catch (e) {
        if (attempt >= TRIES || !isRetryable(e)) throw e;
        await sleep(250 * 2 ** (attempt - 1));
      }
    }
  }

  /** PUT a manifest under a tag or digest; returns its digest. */
  async putManifest(repo: string, reference: string, bytes: Buffer, mediaType: string): Promise<string> {
    const digest = sha256(bytes);
    const r = await this.request('PUT', `/v2/${repo}/manifests/${reference}`, {
      scopes: [`repository:${repo}:pull,push`], body: bytes, headers: { 'Content-Type': mediaType }, what: `put manifest ${repo}:${reference}`,
    });
    drain(r.res);
    const got = r.headers['docker-content-digest'];
    if (typeof got === 'string' && got.startsWith('sha256:') && got !== digest) throw new DigestMismatchError(`put manifest ${repo}:${reference}`, digest, got);
    return digest;
  }

  /** Checks the credentials: GET /v2/ (the token flow with them when the registry asks for it). */
  async checkLogin(): Promise<void> {
    const r = await this.request('GET', '/v2/', { what: `login ${this.domain}` });
    drain(r.res);
  }
}

function isTlsOrRefused(e: unknown): boolean {
  const err = e as NodeJS.ErrnoException;
  const code = err?.code ?? '';
  return code === 'ECONNREFUSED' || code === 'EPROTO' || code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS')
    || /SSL|TLS|wrong version number/i.test(err?.message ?? '') || code === 'ECONNRESET';
}
