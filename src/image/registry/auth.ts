// Credentials in a Docker-compatible config.json ($DOCKER_CONFIG/config.json or
// ~/.docker/config.json: {"auths": {"host": {"auth": base64("user:pass")}}}) and the
// parsing of WWW-Authenticate challenges.
import fs = require('fs');
import os = require('os');
import path = require('path');
import crypto = require('crypto');
import { DEFAULT_DOMAIN } from '../ref';
import { TsrunError } from '../../runtime/errors';

export interface Credentials { username: string; password: string }

export function dockerConfigPath(): string {
  const dir = process.env.DOCKER_CONFIG || path.join(os.homedir(), '.docker');
  return path.join(dir, 'config.json');
}

interface AuthEntry { auth?: string; username?: string; password?: string; identitytoken?: string; [k: string]: unknown }
interface DockerConfig { auths?: Record<string, AuthEntry>; [k: string]: unknown }

function readConfig(file: string): DockerConfig {
  let text: string;
  try { text = fs.readFileSync(file, 'utf8'); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new TsrunError(`read ${file}: ${(e as Error).message}`);
  }
  if (!text.trim()) return {};
  try {
    const j = JSON.parse(text) as DockerConfig;
    if (!j || typeof j !== 'object' || Array.isArray(j)) throw new Error('not an object');
    return j;
  } catch (e) {
    throw new TsrunError(`${file}: invalid JSON: ${(e as Error).message.split('\n')[0]}`);
  }
}

/** The host part of an auths key: "https://index.docker.io/v1/" -> "index.docker.io". */
function keyHost(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '').toLowerCase();
}

function sameRegistry(key: string, domain: string): boolean {
  const h = keyHost(key);
  if (domain === DEFAULT_DOMAIN) return h === 'docker.io' || h === 'index.docker.io' || h === 'registry-1.docker.io';
  return h === domain.toLowerCase();
}

/** The key `login` writes for a registry ("https://index.docker.io/v1/" for Docker Hub, as docker does). */
export function authKey(domain: string): string {
  return domain === DEFAULT_DOMAIN ? 'https://index.docker.io/v1/' : domain;
}

/** Credentials stored for a registry domain ("docker.io", "localhost:5000"), if any. */
export function loadCredentials(domain: string, file = dockerConfigPath()): Credentials | undefined {
  const auths = readConfig(file).auths;
  if (!auths || typeof auths !== 'object') return undefined;
  const keys = Object.keys(auths);
  // An exact key first, then any key naming the same host.
  const exact = keys.find((k) => k === authKey(domain) || k === domain);
  for (const k of exact ? [exact, ...keys] : keys) {
    if (!sameRegistry(k, domain)) continue;
    const e = auths[k];
    if (!e || typeof e !== 'object') continue;
    if (typeof e.auth === 'string' && e.auth) {
      const dec = Buffer.from(e.auth, 'base64').toString('utf8');
      const i = dec.indexOf(':');
      if (i > 0) return { username: dec.slice(0, i), password: dec.slice(i + 1) };
    }
    if (typeof e.username === 'string' && typeof e.password === 'string' && e.username) return { username: e.username, password: e.password };
  }
  return undefined;
}

/** Writes config.json atomically (temporary file, fsync, rename) with mode 0600. */
function writeConfig(file: string, cfg: DockerConfig): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`);
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
  try {
    fs.writeSync(fd, JSON.stringify(cfg, null, '\t') + '\n');
    fs.fchmodSync(fd, 0o600);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  try { fs.renameSync(tmp, file); } catch (e) { fs.rmSync(tmp, { force: true }); throw e; }
}

export function storeCredentials(domain: string, creds: Credentials, file = dockerConfigPath()): void {
  const cfg = readConfig(file);
  const auths: Record<string, AuthEntry> = cfg.auths && typeof cfg.auths === 'object' ? cfg.auths : {};
  for (const k of Object.keys(auths)) if (sameRegistry(k, domain) && k !== authKey(domain)) delete auths[k];
  auths[authKey(domain)] = { auth: Buffer.from(`${creds.username}:${creds.password}`, 'utf8').toString('base64') };
  cfg.auths = auths;
  writeConfig(file, cfg);
}

/** Removes every entry for the registry; false when there was none. */
export function removeCredentials(domain: string, file = dockerConfigPath()): boolean {
  const cfg = readConfig(file);
  const auths = cfg.auths;
  if (!auths || typeof auths !== 'object') return false;
  let removed = false;
  for (const k of Object.keys(auths)) if (sameRegistry(k, domain)) { delete auths[k]; removed = true; }
  if (removed) writeConfig(file, cfg);
  return removed;
}

export function basicHeader(c: Credentials): string {
  return 'Basic ' + Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64');
}

export interface Challenge { scheme: 'basic' | 'bearer'; params: Record<string, string> }

/**
 * Parses WWW-Authenticate: `Bearer realm="https://auth/token",service="reg",scope="repository:x:pull"`
 * or `Basic realm="..."`. Several challenges: Bearer is preferred.
 */
export function parseChallenges(header: string | string[] | undefined): Challenge | undefined {
  if (!header) return undefined;
  const text = Array.isArray(header) ? header.join(', ') : header;
  const found: Challenge[] = [];
  let i = 0;
  let cur: Challenge | undefined;
  // A small scanner: tokens are either a scheme (a word not followed by '=') or key=value.
  while (i < text.length) {
    while (i < text.length && /[\s,]/.test(text[i])) i++;
    if (i >= text.length) break;
    const m = /^([A-Za-z0-9_.!#$%&'*+^`|~-]+)/.exec(text.slice(i));
    if (!m) break;
    const word = m[1];
    let j = i + word.length;
    while (j < text.length && text[j] === ' ') j++;
    if (text[j] === '=') {
      j++;
      while (j < text.length && text[j] === ' ') j++;
      let val = '';
      if (text[j] === '"') {
        j++;
        while (j < text.length && text[j] !== '"') {
          if (text[j] === '\\' && j + 1 < text.length) j++;
          val += text[j++];
        }
        j++;
      } else {
        while (j < text.length && text[j] !== ',' && text[j] !== ' ') val += text[j++];
      }
      if (cur) cur.params[word.toLowerCase()] = val;
      i = j;
    } else {
      const s = word.toLowerCase();
      cur = s === 'basic' || s === 'bearer' ? { scheme: s, params: {} } : undefined;
      if (cur) found.push(cur);
      i = j;
    }
  }
  return found.find((c) => c.scheme === 'bearer') ?? found[0];
}
