import fs = require('fs');
import { parse, str, type Globals } from '../args';
import { TsrunError } from '../../runtime/errors';

export default async function (argv: string[], _g: Globals): Promise<number> {
  const p = parse(argv, { str: ['username', 'password'], bool: ['password-stdin'], alias: { u: 'username', p: 'password' } }, 'login');
  const registry = p.args[0] ?? 'docker.io';
  const user = str(p, 'username');
  let password = str(p, 'password');
  if (p.flags['password-stdin']) password = fs.readFileSync(0, 'utf8').replace(/\r?\n$/, '');
  if (!user || password === undefined) throw new TsrunError('login: give --username and --password (or --password-stdin)');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { login } = require('../../image/registry') as typeof import('../../image/registry');
  await login(registry, user, password);
  process.stdout.write('Login Succeeded\n');
  return 0;
}
