import fs = require('fs');
import { parse, str, type Globals, type Parsed } from '../args';
import { TsrunError } from '../../runtime/errors';
import type { DockerSeccompProfile } from '../../engine/seccomp-default';

export default async function (argv: string[], g: Globals): Promise<number> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { runImage } = require('../../engine/run') as typeof import('../../engine/run');
  return runImage(parseRunArgs(argv, g, 'run'));
}

export const RUN_FLAGS = {
  bool: ['rm', 'detach', 'interactive', 'tty', 'read-only', 'it', 'ti', 'privileged', 'init', 'publish-all', 'no-healthcheck'],
  str: ['name', 'entrypoint', 'workdir', 'user', 'hostname', 'pull', 'platform', 'restart',
    'memory', 'memory-swap', 'memory-reservation', 'cpus', 'cpu-shares', 'cpu-period', 'cpu-quota', 'cpuset-cpus', 'cpuset-mems',
    'pids-limit', 'stop-signal', 'stop-timeout', 'network', 'ip', 'mac-address', 'detach-keys', 'shm-size', 'pid', 'ipc', 'uts',
    'oom-score-adj', 'cidfile', 'log-driver', 'health-cmd', 'health-interval', 'health-timeout', 'health-start-period', 'health-retries'],
  multi: ['env', 'env-file', 'volume', 'mount', 'tmpfs', 'cap-add', 'cap-drop', 'security-opt', 'label', 'label-file',
    'publish', 'expose', 'network-alias', 'dns', 'dns-search', 'dns-option', 'add-host', 'link', 'ulimit', 'sysctl', 'group-add', 'device', 'log-opt'],
  alias: {
    d: 'detach', i: 'interactive', t: 'tty', e: 'env', w: 'workdir', u: 'user', h: 'hostname',
    v: 'volume', m: 'memory', c: 'cpu-shares', l: 'label', p: 'publish', P: 'publish-all', net: 'network', 'net-alias': 'network-alias',
  },
};

/** docker's names of the flags in its error messages */
const FLAG_NAMES: Record<string, string> = { memory: '-m, --memory', 'cpu-shares': '-c, --cpu-shares' };

function badValue(flag: string, value: string, why: string): TsrunError {
  return new TsrunError(`invalid argument "${value}" for "${FLAG_NAMES[flag] ?? '--' + flag}" flag: ${why}`, 125);
}

export function parseRunArgs(argv: string[], g: Globals, cmd: 'run' | 'create'): import('../../engine/run').RunImageOptions {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const vol = require('../../engine/volumes') as typeof import('../../engine/volumes');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { normalizeCaps } = require('../../engine/spec') as typeof import('../../engine/spec');
  let p: Parsed;
  try {
    p = parse(argv, { ...RUN_FLAGS, stopAfter: 1 }, cmd);
  } catch (e) {
    throw new TsrunError((e as Error).message, 125);
  }
  if (!p.args.length) throw new TsrunError(`"tsrun ${cmd}" requires at least 1 argument: tsrun ${cmd} [OPTIONS] IMAGE [COMMAND] [ARG...]`, 125);
  if (p.flags.rm && str(p, 'restart') && str(p, 'restart') !== 'no') throw new TsrunError('Conflicting options: --restart and --rm', 125);
  const pull = str(p, 'pull') ?? 'missing';
  if (!['missing', 'always', 'never'].includes(pull)) throw new TsrunError(`invalid pull option: '${pull}': must be one of "always", "missing", "never"`, 125);
  const list = (name: string) => (p.flags[name] as string[] | undefined) ?? [];

  // environment: --env-file entries first, then -e (docker's order)
  const env = [...list('env-file').flatMap((f) => readKVFile(f, true)), ...list('env').map(envEntry)].filter((e): e is string => e !== undefined);
  const labels: Record<string, string> = {};
  for (const l of [...list('label-file').flatMap((f) => readKVFile(f, false)), ...list('label')]) {
    const i = l.indexOf('=');
    labels[i < 0 ? l : l.slice(0, i)] = i < 0 ? '' : l.slice(i + 1);
  }
  const mounts = [
    ...list('volume').map(vol.parseVolumeFlag),
    ...list('mount').map(vol.parseMountFlag),
    ...list('tmpfs').map(vol.parseTmpfsFlag),
  ];
  const sec = securityOpts(list('security-opt'));

  const memory = bytesFlag(p, 'memory');
  const swapRaw = str(p, 'memory-swap');
  const memorySwap = swapRaw === '-1' ? -1 : bytesFlag(p, 'memory-swap');
  const memoryReservation = bytesFlag(p, 'memory-reservation');
  let cpuQuota = intFlag(p, 'cpu-quota');
  let cpuPeriod = intFlag(p, 'cpu-period');
  const cpus = str(p, 'cpus');
  if (cpus !== undefined) {
    const nano = nanoCpus(cpus);
    const n = require('os').cpus().length as number; // eslint-disable-line @typescript-eslint/no-require-imports
    if (nano < 0 || nano > n * 1e9 || (nano > 0 && nano < 1e7)) {
      throw new TsrunError(`Range of CPUs is from 0.01 to ${n}.00, as there are only ${n} CPUs available`, 125);
    }
    if (cpuPeriod) throw new TsrunError('Conflicting options: Nano CPUs and CPU Period cannot both be set', 125);
    if (cpuQuota) throw new TsrunError('Conflicting options: Nano CPUs and CPU Quota cannot both be set', 125);
    if (nano > 0) { cpuPeriod = 100000; cpuQuota = Math.round(nano / 1e4); }
  }
  const stopSignal = str(p, 'stop-signal');
  if (stopSignal !== undefined) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { parseSignal } = require('../../runtime/signals') as typeof import('../../runtime/signals');
    try { if (parseSignal(stopSignal) === 0) throw new Error(); } catch { throw new TsrunError(`Invalid signal: ${stopSignal}`, 125); }
  }
  const pidsLimit = intFlag(p, 'pids-limit');
  const ns = (flag: 'pid' | 'ipc' | 'uts', ok: string[]) => {
    const v = str(p, flag);
    if (v !== undefined && !ok.includes(v)) throw new TsrunError(`invalid ${flag.toUpperCase()} mode: ${v} (${ok.filter(Boolean).join(', ')})`, 125);
    return v === 'host';
  };
  const oomScoreAdj = intFlag(p, 'oom-score-adj');
  if (oomScoreAdj !== undefined && (oomScoreAdj < -1000 || oomScoreAdj > 1000)) throw new TsrunError(`Invalid value ${oomScoreAdj}, range for oom score adj is [-1000, 1000]`, 125);
  const shmSize = bytesFlag(p, 'shm-size');
  if (shmSize !== undefined && shmSize <= 0) throw badValue('shm-size', str(p, 'shm-size')!, 'must be greater than 0');
  const sysctls: Record<string, string> = {};
  for (const s of list('sysctl')) {
    const i = s.indexOf('=');
    if (i <= 0) throw badValue('sysctl', s, `sysctl '${s}' is not whitelisted`);
    sysctls[s.slice(0, i)] = s.slice(i + 1);
  }
  return {
    root: g.root, image: p.args[0], args: p.args.slice(1), name: str(p, 'name'), rm: !!p.flags.rm, detach: !!p.flags.detach,
    tty: !!(p.flags.tty || p.flags.it || p.flags.ti), entrypoint: str(p, 'entrypoint'), env: env.length ? env : undefined,
    workdir: str(p, 'workdir'), user: str(p, 'user'), hostname: str(p, 'hostname'), readonly: !!p.flags['read-only'],
    pull: pull as 'missing' | 'always' | 'never', restart: restartPolicy(str(p, 'restart')),
    ...(mounts.length ? { mounts } : {}),
    ...(memory !== undefined ? { memory } : {}),
    ...(memorySwap !== undefined ? { memorySwap } : {}),
    ...(memoryReservation !== undefined ? { memoryReservation } : {}),
    ...(cpuQuota ? { cpuQuota } : {}),
    ...(cpuPeriod ? { cpuPeriod } : {}),
    ...(intFlag(p, 'cpu-shares') ? { cpuShares: intFlag(p, 'cpu-shares') } : {}),
    ...(str(p, 'cpuset-cpus') !== undefined ? { cpusetCpus: str(p, 'cpuset-cpus') } : {}),
    ...(str(p, 'cpuset-mems') !== undefined ? { cpusetMems: str(p, 'cpuset-mems') } : {}),
    ...(pidsLimit !== undefined && pidsLimit > 0 ? { pidsLimit } : {}),
    ...(list('cap-add').length ? { capAdd: normalizeCaps(list('cap-add'), 'CapAdd') } : {}),
    ...(list('cap-drop').length ? { capDrop: normalizeCaps(list('cap-drop'), 'CapDrop') } : {}),
    ...(p.flags.privileged ? { privileged: true } : {}),
    ...sec,
    ...(Object.keys(labels).length ? { labels } : {}),
    ...(stopSignal !== undefined ? { stopSignal } : {}),
    ...(str(p, 'stop-timeout') !== undefined ? { stopTimeout: intFlag(p, 'stop-timeout') } : {}),
    ...(p.flags.interactive || p.flags.it || p.flags.ti ? {} : { stdin: 'null' as const }), // -it is -i -t
    ...(p.flags.init ? { init: true } : {}),
    ...(str(p, 'detach-keys') !== undefined ? { detachKeys: str(p, 'detach-keys') } : {}),
    ...(list('ulimit').length ? { ulimits: list('ulimit').map(ulimit) } : {}),
    ...(shmSize !== undefined ? { shmSize } : {}),
    ...(Object.keys(sysctls).length ? { sysctls } : {}),
    ...(list('group-add').length ? { groupAdd: list('group-add') } : {}),
    ...(ns('pid', ['host', '']) ? { pidHost: true } : {}),
    ...(ns('ipc', ['host', 'private', 'shareable', '']) ? { ipcHost: true } : {}),
    ...(ns('uts', ['host', '']) ? { utsHost: true } : {}),
    ...(str(p, 'network') === 'host' ? { netHost: true } : {}),
    ...(oomScoreAdj !== undefined ? { oomScoreAdj } : {}),
    ...(list('device').length ? { devices: list('device').map(device) } : {}),
    ...(str(p, 'cidfile') !== undefined ? { cidfile: str(p, 'cidfile') } : {}),
    ...logConfig(str(p, 'log-driver'), list('log-opt')),
    ...healthFlags(p),
    net: {
      network: str(p, 'network'), ip: str(p, 'ip'), mac: str(p, 'mac-address'), publishAll: !!p.flags['publish-all'],
      publish: list('publish'), expose: list('expose'), aliases: list('network-alias'), dns: list('dns'), dnsSearch: list('dns-search'),
      dnsOptions: list('dns-option'), addHosts: list('add-host'), links: list('link'),
    },
  };
}

/** --health-cmd, --health-interval/-timeout/-start-period (Go durations), --health-retries, --no-healthcheck. */
function healthFlags(p: Parsed): { healthFlags?: import('../../engine/run').RunImageOptions['healthFlags'] } {
  const dur = (name: string): number | undefined => {
    const v = str(p, name);
    if (v === undefined) return undefined;
    let ms = 0;
    if (!/^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/.test(v)) throw badValue(name, v, `time: invalid duration "${v}"`);
    for (const m of v.matchAll(/(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)/g)) ms += Number(m[1]) * ({ ns: 1e-6, us: 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 } as Record<string, number>)[m[2]];
    if (ms < 1) throw new TsrunError(`--${name} cannot be less than 1ms`, 125);
    return Math.round(ms);
  };
  const f = {
    cmd: str(p, 'health-cmd'), interval: dur('health-interval'), timeout: dur('health-timeout'), startPeriod: dur('health-start-period'),
    retries: intFlag(p, 'health-retries'), none: !!p.flags['no-healthcheck'],
  };
  if (f.retries !== undefined && f.retries < 0) throw new TsrunError('--health-retries cannot be negative', 125);
  if (f.none && (f.cmd !== undefined || f.interval !== undefined || f.timeout !== undefined || f.retries !== undefined || f.startPeriod !== undefined)) {
    throw new TsrunError('--no-healthcheck conflicts with --health-* options', 125);
  }
  return Object.values(f).some((v) => v !== undefined && v !== false) ? { healthFlags: f } : {};
}

/** --log-driver json-file|none and json-file's --log-opt max-size=SIZE, max-file=N (docker's checks). */
function logConfig(driver: string | undefined, opts: string[]): { log?: { driver: 'json-file' | 'none'; maxSize?: number; maxFile?: number } } {
  if (driver === undefined && !opts.length) return {};
  const d = driver ?? 'json-file';
  if (d !== 'json-file' && d !== 'none') throw new TsrunError(`failed to create task for container: logging driver "${d}" is not supported by tsrun (json-file, none)`, 125);
  if (d === 'none' && opts.length) throw new TsrunError('logger: no log opts are allowed for the none driver', 125);
  let maxSize: number | undefined, maxFile: number | undefined;
  for (const o of opts) {
    const i = o.indexOf('=');
    const k = i < 0 ? o : o.slice(0, i), v = i < 0 ? '' : o.slice(i + 1);
    if (k === 'max-size') {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const n = (require('../../engine/volumes') as typeof import('../../engine/volumes')).parseBytes(v);
      if (n === undefined || n <= 0) throw new TsrunError(`invalid value for log opt max-size: ${v}`, 125);
      maxSize = n;
    } else if (k === 'max-file') {
      if (!/^\d+$/.test(v) || Number(v) < 1) throw new TsrunError('max-file cannot be less than 1', 125);
      maxFile = Number(v);
    } else throw new TsrunError(`unknown log opt '${k}' for json-file log driver`, 125);
  }
  if (maxFile !== undefined && maxFile > 1 && maxSize === undefined) throw new TsrunError('max-file cannot be set without max-size', 125);
  return { log: { driver: d, ...(maxSize ? { maxSize } : {}), ...(maxFile ? { maxFile } : {}) } };
}

/** --ulimit NAME=SOFT[:HARD] as docker checks it. */
function ulimit(v: string): { name: string; soft: number; hard: number } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { ULIMITS } = require('../../engine/spec') as typeof import('../../engine/spec');
  const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(v);
  if (!m) throw badValue('ulimit', v, `invalid ulimit argument: ${v}`);
  if (!ULIMITS.includes(m[1])) throw badValue('ulimit', v, `invalid ulimit type: ${m[1]}`);
  const soft = Number(m[2]), hard = m[3] === undefined ? soft : Number(m[3]);
  if (soft !== -1 && hard !== -1 && soft > hard) throw badValue('ulimit', v, `ulimit soft limit must be less than or equal to hard limit: ${soft} > ${hard}`);
  return { name: m[1], soft, hard };
}

/** --device HOST[:CONTAINER][:PERMS] (perms: some of r, w, m). */
function device(v: string): { host: string; container: string; perms: string } {
  const parts = v.split(':');
  let perms = 'rwm';
  if (parts.length > 1 && /^[rwm]{1,3}$/.test(parts[parts.length - 1])) perms = parts.pop()!;
  if (parts.length > 2 || !parts[0].startsWith('/') || (parts[1] !== undefined && !parts[1].startsWith('/'))) throw badValue('device', v, `bad format for path: ${v}`);
  return { host: parts[0], container: parts[1] ?? parts[0], perms };
}

function restartPolicy(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  if (!/^(no|always|unless-stopped|on-failure(:\d+)?)$/.test(v)) throw new TsrunError(`invalid restart policy '${v}': use no, always, unless-stopped or on-failure[:N]`, 125);
  return v;
}

function bytesFlag(p: Parsed, name: string): number | undefined {
  const v = str(p, name);
  if (v === undefined || v === '') return undefined;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { parseBytes } = require('../../engine/volumes') as typeof import('../../engine/volumes');
  const n = parseBytes(v);
  if (n === undefined) throw badValue(name, v, `invalid size: '${v}'`);
  return n;
}

function intFlag(p: Parsed, name: string): number | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  if (!/^[+-]?\d+$/.test(v)) throw badValue(name, v, `strconv.ParseInt: parsing "${v}": invalid syntax`);
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw badValue(name, v, `strconv.ParseInt: parsing "${v}": value out of range`);
  return n;
}

/** --cpus as docker's NanoCPUs: a rational number ("1.5", "3/2"), in billionths of a CPU. */
function nanoCpus(v: string): number {
  let n: number;
  const frac = /^([+-]?\d+)\/(\d+)$/.exec(v);
  if (frac && Number(frac[2]) !== 0) n = Number(frac[1]) / Number(frac[2]);
  else if (/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(v)) n = Number(v);
  else throw badValue('cpus', v, `failed to parse ${v} as a rational number`);
  const nano = n * 1e9;
  if (Math.abs(nano - Math.round(nano)) > 1e-6) throw badValue('cpus', v, 'value is too precise');
  return Math.round(nano);
}

/** -e KEY=VALUE as is; -e KEY takes KEY's value from tsrun's environment (dropped when unset). */
function envEntry(e: string): string | undefined {
  const i = e.indexOf('=');
  if (i === 0 || e === '') throw new TsrunError(`invalid environment variable: ${e}`, 125);
  if (i > 0) return e;
  const v = process.env[e];
  return v === undefined ? undefined : `${e}=${v}`;
}

/** docker's --env-file / --label-file format: KEY=VALUE lines, # comments; a bare KEY (env only) from our environment. */
function readKVFile(file: string, lookup: boolean): string[] {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new TsrunError(`open ${file}: ${code === 'ENOENT' ? 'no such file or directory' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (e as Error).message}`, 125);
  }
  const out: string[] = [];
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const lines = buf.toString('latin1').split('\n');
  let offset = 0;
  for (let n = 0; n < lines.length; n++) {
    const rawLine = buf.subarray(offset, offset + lines[n].length);
    offset += lines[n].length + 1;
    let text: string;
    try { text = decoder.decode(rawLine); } catch { throw new TsrunError(`env file ${file} contains invalid utf8 bytes at line ${n + 1}`, 125); }
    const line = text.replace(/\r$/, '').replace(/^\s+/, '');
    if (!line || line.startsWith('#')) continue;
    const i = line.indexOf('=');
    const key = (i < 0 ? line : line.slice(0, i)).replace(/^[ \t\n\v\f\r]+/, '');
    if (/[ \t\n\v\f\r]/.test(key)) throw new TsrunError(`poorly formatted environment: variable '${key}' contains whitespaces`, 125);
    if (!key) throw new TsrunError(`poorly formatted environment: no variable name on line '${line}'`, 125);
    if (i >= 0) out.push(`${key}=${line.slice(i + 1)}`);
    else if (lookup && process.env[key] !== undefined) out.push(`${key}=${process.env[key]}`);
  }
  return out;
}

/** --security-opt: seccomp=unconfined|builtin|FILE, no-new-privileges[=|:BOOL], systempaths=unconfined, label=, apparmor=. */
function securityOpts(opts: string[]): { seccomp?: 'unconfined' | DockerSeccompProfile; noNewPrivileges?: boolean; systemPathsUnconfined?: boolean } {
  const out: ReturnType<typeof securityOpts> = {};
  for (const opt of opts) {
    if (opt === 'no-new-privileges') { out.noNewPrivileges = true; continue; }
    let cut = opt.indexOf('=');
    if (cut < 0) cut = opt.indexOf(':');
    const k = cut < 0 ? opt : opt.slice(0, cut), v = cut < 0 ? '' : opt.slice(cut + 1);
    if (cut < 0 || v === '') throw new TsrunError(`Invalid --security-opt: ${JSON.stringify(opt)}`, 125);
    switch (k) {
      case 'seccomp':
        if (v === 'unconfined') out.seccomp = 'unconfined';
        else if (v === 'builtin') delete out.seccomp;
        else out.seccomp = readSeccompProfile(v);
        break;
      case 'no-new-privileges':
        if (/^(1|t|T|TRUE|true|True)$/.test(v)) out.noNewPrivileges = true;
        else if (/^(0|f|F|FALSE|false|False)$/.test(v)) out.noNewPrivileges = false;
        else throw new TsrunError(`invalid --security-opt 2: ${JSON.stringify(opt)}`, 125);
        break;
      case 'systempaths':
        if (v !== 'unconfined') throw new TsrunError(`invalid --security-opt 2: ${JSON.stringify(opt)}`, 125);
        out.systemPathsUnconfined = true;
        break;
      case 'label': case 'apparmor': break; // no SELinux or AppArmor in tsrun: accepted, nothing to apply
      default: throw new TsrunError(`invalid --security-opt 2: ${JSON.stringify(opt)}`, 125);
    }
  }
  return out;
}

function readSeccompProfile(file: string): DockerSeccompProfile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new TsrunError(`opening seccomp profile (${file}) failed: open ${file}: ${code === 'ENOENT' ? 'no such file or directory' : code === 'EACCES' ? 'permission denied' : (e as Error).message}`, 125);
  }
  let p: unknown;
  try {
    p = JSON.parse(text);
  } catch (e) {
    throw new TsrunError(`compacting json for seccomp profile (${file}) failed: ${(e as Error).message.split('\n')[0]}`, 125);
  }
  if (!p || typeof p !== 'object' || Array.isArray(p) || typeof (p as { defaultAction?: unknown }).defaultAction !== 'string') {
    throw new TsrunError(`Error loading seccomp profile (${file}): defaultAction is required`, 125);
  }
  return p as DockerSeccompProfile;
}
