// login / logout: check credentials against a registry and keep them in config.json.
import { normaliseRegistry } from '../ref';
import { TsrunError } from '../../runtime/errors';
import { dockerConfigPath, removeCredentials, storeCredentials } from './auth';
import { RegistryClient } from './client';
import { errorText } from './errors';

/**
 * Verifies user/password against the registry (GET /v2/ with them; the token flow when the
 * registry asks for a bearer token) and stores them in config.json (mode 0600, atomically).
 * `registry` is a host ("localhost:5000"), "docker.io" or a URL ("https://index.docker.io/v1/").
 * Returns the config file written.
 */
export async function login(registry: string, username: string, password: string): Promise<string> {
  const domain = normaliseRegistry(registry);
  if (!username) throw new TsrunError('login: a username is required');
  if (!password) throw new TsrunError('login: a password is required');
  const client = new RegistryClient(domain, { credentials: { username, password } });
  try {
    await client.checkLogin();
  } catch (e) {
    throw new TsrunError(`login ${domain}: ${errorText(e).replace(/^login [^:]+(:\d+)?: /, '')}`);
  }
  const file = dockerConfigPath();
  storeCredentials(domain, { username, password }, file);
  return file;
}

/** Removes the registry's credentials from config.json; false when there were none. */
export function logout(registry: string): boolean {
  return removeCredentials(normaliseRegistry(registry));
}
