// `tsrun version [--format json]`: docker version's Client and Server blocks. tsrun has no daemon:
// both describe this installation (the Server block adds the kernel and the OCI runtime).
import fs = require('fs');
import os = require('os');
import path = require('path');
import { parse, str, type Globals } from '../args';
import { repoDir } from '../../kernel/native';

export const API_VERSION = '1.44';
export const MIN_API_VERSION = '1.24';
export const OCI_SPEC_VERSION = '1.2.0';
const FALLBACK_VERSION = '0.1.0';

/** package.json's version (read at run time), or the version this file was written for. */
export function tsrunVersion(): string {
  try {
    const v = (JSON.parse(fs.readFileSync(path.join(repoDir(), 'package.json'), 'utf8')) as { version?: unknown }).version;
    if (typeof v === 'string' && v) return v;
  } catch { /* not next to a package.json */ }
  return FALLBACK_VERSION;
}

/** The checked-out commit (12 hex digits) when the repo's .git is readable; "unknown" otherwise. */
export function gitCommit(): string {
  try {
    const git = path.join(repoDir(), '.git');
    const head = fs.readFileSync(path.join(git, 'HEAD'), 'utf8').trim();
    if (/^[0-9a-f]{40}$/.test(head)) return head.slice(0, 12);
    const ref = /^ref: (\S+)$/.exec(head)?.[1];
    if (!ref) return 'unknown';
    try { return fs.readFileSync(path.join(git, ref), 'utf8').trim().slice(0, 12); } catch { /* packed */ }
    const packed = fs.readFileSync(path.join(git, 'packed-refs'), 'utf8');
    const m = new RegExp(`^([0-9a-f]{40}) ${ref.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm').exec(packed);
    return m ? m[1].slice(0, 12) : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Go's GOARCH names, as docker prints them. */
export function goArch(arch = process.arch): string {
  return ({ x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[arch] ?? arch;
}

export default function (argv: string[], _g: Globals): number {
  const p = parse(argv, { str: ['format'], alias: { f: 'format' } }, 'version');
  const format = str(p, 'format');
  const version = tsrunVersion();
  const commit = gitCommit();
  const osArch = `linux/${goArch()}`;
  const built = (() => { try { return fs.statSync(path.join(repoDir(), 'dist', 'tsrun.js')).mtime.toUTCString(); } catch { return 'unknown'; } })();
  const v = {
    Client: { Version: version, ApiVersion: API_VERSION, NodeVersion: process.version, GitCommit: commit, Built: built, Os: 'linux', Arch: goArch(), Context: 'default' },
    Server: {
      Platform: { Name: 'tsrun' },
      Version: version, ApiVersion: API_VERSION, MinAPIVersion: MIN_API_VERSION, NodeVersion: process.version, GitCommit: commit,
      Os: 'linux', Arch: goArch(), KernelVersion: os.release(), Built: built,
      Components: [{ Name: 'tsrun', Version: version, Details: { OciSpec: OCI_SPEC_VERSION, GitCommit: commit } }],
    },
  };
  if (format === 'json' || format === '{{json .}}') {
    process.stdout.write(JSON.stringify(v) + '\n');
    return 0;
  }
  if (format) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    process.stdout.write((require('../template') as typeof import('../template')).renderTemplate(format, v) + '\n');
    return 0;
  }
  const block = (indent: string, rows: [string, string][]) => rows.map(([k, x]) => `${indent}${(k + ':').padEnd(19 - indent.length)}${x}\n`).join('');
  process.stdout.write(
    'Client:\n' +
    block(' ', [['Version', version], ['API version', API_VERSION], ['Node version', process.version], ['Git commit', commit], ['Built', built], ['OS/Arch', osArch], ['Context', 'default']]) +
    '\nServer: tsrun (no daemon: this installation)\n Engine:\n' +
    block('  ', [['Version', version], ['API version', `${API_VERSION} (minimum version ${MIN_API_VERSION})`], ['Node version', process.version], ['Git commit', commit], ['Built', built], ['OS/Arch', osArch], ['Kernel', os.release()]]) +
    ' tsrun (OCI runtime):\n' +
    block('  ', [['Version', version], ['OCI spec', OCI_SPEC_VERSION], ['GitCommit', commit]]));
  return 0;
}
