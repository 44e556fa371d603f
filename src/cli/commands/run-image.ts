import { parse, str, type Globals } from '../args';
import { TsrunError } from '../../runtime/errors';

export default async function (argv: string[], g: Globals): Promise<number> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { runImage } = require('../../engine/run') as typeof import('../../engine/run');
  return runImage(parseRunArgs(argv, g, 'run'));
}

export function parseRunArgs(argv: string[], g: Globals, cmd: 'run' | 'create'): import('../../engine/run').RunImageOptions {
  let p;
  try {
    p = parse(argv, {
      bool: ['rm', 'detach', 'interactive', 'tty', 'read-only', 'it', 'ti'],
      str: ['name', 'entrypoint', 'workdir', 'user', 'hostname', 'pull', 'platform', 'restart'],
      multi: ['env'],
      alias: { d: 'detach', i: 'interactive', t: 'tty', e: 'env', w: 'workdir', u: 'user', h: 'hostname' },
      stopAfter: 1,
    }, cmd);
  } catch (e) {
    throw new TsrunError((e as Error).message, 125);
  }
  if (!p.args.length) throw new TsrunError(`"tsrun ${cmd}" requires at least 1 argument: tsrun ${cmd} [OPTIONS] IMAGE [COMMAND] [ARG...]`, 125);
  if (p.flags.rm && str(p, 'restart') && str(p, 'restart') !== 'no') throw new TsrunError('Conflicting options: --restart and --rm', 125);
  const pull = str(p, 'pull') ?? 'missing';
  if (!['missing', 'always', 'never'].includes(pull)) throw new TsrunError(`invalid pull option: '${pull}': must be one of "always", "missing", "never"`, 125);
  return {
    root: g.root, image: p.args[0], args: p.args.slice(1), name: str(p, 'name'), rm: !!p.flags.rm, detach: !!p.flags.detach,
    tty: !!(p.flags.tty || p.flags.it || p.flags.ti), entrypoint: str(p, 'entrypoint'), env: p.flags.env as string[] | undefined,
    workdir: str(p, 'workdir'), user: str(p, 'user'), hostname: str(p, 'hostname'), readonly: !!p.flags['read-only'],
    pull: pull as 'missing' | 'always' | 'never', restart: restartPolicy(str(p, 'restart')),
  };
}

function restartPolicy(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  if (!/^(no|always|unless-stopped|on-failure(:\d+)?)$/.test(v)) throw new TsrunError(`invalid restart policy '${v}': use no, always, unless-stopped or on-failure[:N]`, 125);
  return v;
}
