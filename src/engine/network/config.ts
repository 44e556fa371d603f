// A container's network settings as `run`/`create` record them (ContainerRecord.net).
import type { PortRequest } from './ports';

export interface NetConfig {
  /** bridge | none | host | container:<id> | a user network's name */
  mode: string;
  aliases?: string[];          // --network-alias (user networks)
  ip?: string;                 // --ip (user networks)
  mac?: string;                // --mac-address
  ports?: PortRequest[];       // -p and -P (hostPort 0: chosen at start)
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  addHosts?: string[];         // --add-host name:ip
  links?: { name: string; alias: string }[];
  /** networks joined with `network connect` (besides mode) */
  extra?: { network: string; aliases?: string[]; ip?: string }[];
}

/** Docker's default is `bridge`; TSRUN_DEFAULT_NETWORK=none (the test suite) keeps containers off the host's network. */
export function defaultNetworkMode(): string {
  return process.env.TSRUN_DEFAULT_NETWORK || 'bridge';
}

export function isBridgeLike(mode: string): boolean {
  return mode !== 'none' && mode !== 'host' && !mode.startsWith('container:');
}
