// The registry client and its helpers: see client.ts (HTTP, auth, manifests, blobs),
// auth.ts (config.json credentials), login.ts, platform.ts, progress.ts, sources.ts.
export { RegistryClient, isInsecureRegistry, isLoopback, sha256, verifyDigest } from './client';
export type { ClientOptions, Manifest as FetchedManifest, RequestOptions, Response, Body } from './client';
export { RegistryError, DigestMismatchError, errorFromResponse, isRetryable } from './errors';
export { dockerConfigPath, loadCredentials, storeCredentials, removeCredentials, parseChallenges } from './auth';
export type { Credentials, Challenge } from './auth';
export { login, logout } from './login';
export { hostPlatform, parsePlatform, formatPlatform, normalisePlatform, selectManifest } from './platform';
export { progressRenderer, humanSize } from './progress';
export type { Renderer } from './progress';
export { recordBlobSource, blobSources } from './sources';
