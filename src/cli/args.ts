// A small flag parser with runc's conventions: --flag value, --flag=value, -f value, bool flags.
import { TsrunError } from '../runtime/errors';

export interface FlagSpec {
  bool?: string[];
  str?: string[];
  multi?: string[];
  alias?: Record<string, string>;
  /** stop parsing flags once this many positional arguments were seen (exec ID CMD...) */
  stopAfter?: number;
}

export interface Parsed {
  flags: Record<string, string | boolean | string[]>;
  args: string[];
}

export function parse(argvIn: string[], spec: FlagSpec, cmd: string): Parsed {
  let argv = argvIn;
  const flags: Parsed['flags'] = {};
  const args: string[] = [];
  const bool = new Set(spec.bool ?? []), str = new Set(spec.str ?? []), multi = new Set(spec.multi ?? []);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (spec.stopAfter !== undefined && args.length >= spec.stopAfter) { args.push(...argv.slice(i)); break; }
    if (a === '--') { args.push(...argv.slice(i + 1)); break; }
    if (!a.startsWith('-') || a === '-') { args.push(a); continue; }
    // docker-style clusters of one-letter flags: -aq = -a -q, -it = -i -t (the last may take a value: -ef FILE)
    if (/^-[a-zA-Z]{2,}$/.test(a) && !bool.has(a.slice(1)) && !str.has(a.slice(1)) && !multi.has(a.slice(1)) && !spec.alias?.[a.slice(1)]) {
      const letters = a.slice(1).split('');
      if (letters.slice(0, -1).every((l) => bool.has(spec.alias?.[l] ?? l))) {
        argv = [...argv.slice(0, i), ...letters.map((l) => '-' + l), ...argv.slice(i + 1)];
        i--;
        continue;
      }
    }
    if (a === '--help' && !bool.has('help')) {
      // help.ts lives in dist/engine.js: the hot path's bundle stays small
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      process.stdout.write((require('./load-engine') as typeof import('./load-engine')).loadEngine().renderHelp(cmd, spec));
      process.exit(0);
    }
    let name = a.replace(/^--?/, '');
    let value: string | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) { value = name.slice(eq + 1); name = name.slice(0, eq); }
    name = spec.alias?.[name] ?? name;
    if (bool.has(name)) {
      flags[name] = value === undefined ? true : value !== 'false';
    } else if (str.has(name) || multi.has(name)) {
      if (value === undefined) {
        if (i + 1 >= argv.length) throw new TsrunError(`${cmd}: flag needs an argument: ${a}`);
        value = argv[++i];
      }
      if (multi.has(name)) ((flags[name] ??= []) as string[]).push(value);
      else flags[name] = value;
    } else {
      throw new TsrunError(`${cmd}: flag provided but not defined: ${a}`);
    }
  }
  return { flags, args };
}

export function str(p: Parsed, name: string): string | undefined {
  const v = p.flags[name];
  return typeof v === 'string' ? v : undefined;
}

export function needId(p: Parsed, cmd: string): string {
  if (p.args.length < 1) throw new TsrunError(`${cmd}: requires exactly 1 argument (the container id)`);
  return p.args[0];
}

export interface Globals {
  root: string;
  log?: string;
  logFormat: 'text' | 'json';
  debug: boolean;
}

export function fdCount(v: string | undefined): number {
  if (v === undefined) return 0;
  if (!/^\d+$/.test(v)) throw new TsrunError(`invalid --preserve-fds "${v}": a number of fds`);
  return Number(v);
}
