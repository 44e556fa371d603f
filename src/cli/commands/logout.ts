import { parse, type Globals } from '../args';

export default async function (argv: string[], _g: Globals): Promise<number> {
  const p = parse(argv, {}, 'logout');
  const registry = p.args[0] ?? 'docker.io';
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { logout } = require('../../image/registry') as typeof import('../../image/registry');
  await logout(registry);
  process.stdout.write(`Removing login credentials for ${registry}\n`);
  return 0;
}
