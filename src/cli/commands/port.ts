// docker port CONTAINER [PRIVATE_PORT[/PROTO]]: `80/tcp -> 0.0.0.0:8080`.
import { parse, type Globals } from '../args';
import { TsrunError } from '../../runtime/errors';
import { findContainer } from '../../engine/containers';

export default function (argv: string[], g: Globals): number {
  const p = parse(argv, {}, 'port');
  if (p.args.length < 1 || p.args.length > 2) throw new TsrunError('"port" requires at least 1 and at most 2 arguments: tsrun port CONTAINER [PRIVATE_PORT[/PROTO]]', 1);
  const c = findContainer(g.root, p.args[0]);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const net = require('../../engine/network') as typeof import('../../engine/network');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { formatPort } = require('../../engine/network/ports') as typeof import('../../engine/network/ports');
  net.reconcile(g.root);
  const ports = net.attachmentOf(g.root, c.id)?.ports ?? [];
  if (p.args[1]) {
    const [port, proto = 'tcp'] = p.args[1].split('/');
    const hits = ports.filter((x) => String(x.containerPort) === port && x.proto === proto);
    if (!hits.length) throw new TsrunError(`No public port '${port}/${proto}' published for ${p.args[0]}`, 1);
    process.stdout.write(hits.map((x) => `${x.hostIp}:${x.hostPort}\n`).join(''));
    return 0;
  }
  process.stdout.write(ports.map((x) => formatPort(x) + '\n').join(''));
  return 0;
}
