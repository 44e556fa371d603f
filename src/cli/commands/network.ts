// docker network create/ls/inspect/rm/prune/connect/disconnect (and the hidden dns-serve: the root's resolver).
import crypto = require('crypto');
import { parse, str, type Globals } from '../args';
import { TsrunError } from '../../runtime/errors';
import { table } from '../format';
import { renderTemplate } from './inspect';
import { renderRows } from '../template';
import * as net from '../../engine/network';
import { findContainer, saveContainer, listContainers } from '../../engine/containers';
import { confirmOrCancel, pruneFilter } from '../prune';

const PSEUDO = ['host', 'none'].map((name) => ({ name, id: crypto.createHash('sha256').update('tsrun-network-' + name).digest('hex'), driver: name === 'host' ? 'host' : 'null' }));

export default async function (argv: string[], g: Globals): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'create': return create(rest, g);
    case 'ls': case 'list': return ls(rest, g);
    case 'inspect': return inspect(rest, g);
    case 'rm': case 'remove': return rm(rest, g);
    case 'prune': return prune(rest, g);
    case 'connect': return connect(rest, g);
    case 'disconnect': return disconnect(rest, g);
    case 'dns-serve': net.serveDns(g.root); return new Promise(() => { /* serves until SIGTERM */ });
    default:
      process.stdout.write(`Usage: tsrun network COMMAND

Manage networks

Commands:
  connect     Connect a container to a network
  create      Create a network
  disconnect  Disconnect a container from a network
  inspect     Display detailed information on one or more networks
  ls          List networks
  prune       Remove all unused networks
  rm          Remove one or more networks
`);
      return sub && sub !== '--help' && sub !== 'help' ? 1 : 0;
  }
}

function create(argv: string[], g: Globals): number {
  const p = parse(argv, { bool: ['internal', 'attachable', 'ipv6'], str: ['subnet', 'gateway', 'driver', 'ip-range'], multi: ['label', 'opt'], alias: { d: 'driver', o: 'opt' } }, 'network create');
  if (p.args.length !== 1) throw new TsrunError('"network create" requires exactly 1 argument: tsrun network create [OPTIONS] NETWORK', 1);
  const driver = str(p, 'driver') ?? 'bridge';
  if (driver !== 'bridge') throw new TsrunError(`plugin "${driver}" not found: tsrun has the bridge driver only`, 1);
  if (p.flags.ipv6) throw new TsrunError('IPv6 networks are not supported', 1);
  const labels: Record<string, string> = {};
  for (const l of (p.flags.label as string[]) ?? []) { const i = l.indexOf('='); labels[i < 0 ? l : l.slice(0, i)] = i < 0 ? '' : l.slice(i + 1); }
  let mtu: number | undefined;
  for (const o of (p.flags.opt as string[]) ?? []) {
    const i = o.indexOf('=');
    const k = i < 0 ? o : o.slice(0, i), v = i < 0 ? '' : o.slice(i + 1);
    if (k === net.MTU_OPTION) mtu = net.parseMtu(v, `-o ${net.MTU_OPTION}`);
    else throw new TsrunError(`network create: unsupported option "${k}" (tsrun's bridge driver knows ${net.MTU_OPTION})`, 1);
  }
  const n = net.createNetwork(g.root, { name: p.args[0], subnet: str(p, 'subnet'), gateway: str(p, 'gateway'), internal: !!p.flags.internal, labels, mtu });
  process.stdout.write(n.id + '\n');
  return 0;
}

function ls(argv: string[], g: Globals): number {
  const p = parse(argv, { bool: ['quiet', 'no-trunc'], str: ['format'], multi: ['filter'], alias: { q: 'quiet', f: 'filter' } }, 'network ls');
  const rows: { id: string; name: string; driver: string; created: string; internal?: boolean; labels?: Record<string, string> }[] = [
    ...net.listAll(g.root).map((n) => ({ id: n.id, name: n.name, driver: 'bridge', created: n.created, internal: n.internal, labels: n.labels })), ...PSEUDO.map((x) => ({ ...x, created: '' }))];
  const filters = ((p.flags.filter as string[]) ?? []).map((f) => f.split('='));
  const shown = rows.filter((r) => filters.every(([k, v]) => (k === 'name' ? r.name.includes(v) : k === 'id' ? r.id.startsWith(v) : k === 'driver' ? r.driver === v : true)));
  const id = (x: string) => (p.flags['no-trunc'] ? x : x.slice(0, 12));
  const format = str(p, 'format');
  if (p.flags.quiet) process.stdout.write(shown.map((r) => id(r.id) + '\n').join(''));
  else if (format) process.stdout.write(renderRows(shown.map((r) => ({ ID: id(r.id), Name: r.name, Driver: r.driver, Scope: 'local', CreatedAt: r.created, IPv6: 'false', Internal: String(!!r.internal), Labels: Object.entries(r.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(',') })), format, { ID: 'NETWORK ID' }));
  else process.stdout.write(table([['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE'], ...shown.map((r) => [id(r.id), r.name, r.driver, 'local'])]));
  return 0;
}

function inspectOne(root: string, key: string): Record<string, unknown> {
  const pseudo = PSEUDO.find((x) => x.name === key || x.id.startsWith(key));
  const n = net.listAll(root).find((x) => x.name === key || x.id === key) ?? net.store.findNetwork(root, key);
  if (!n && pseudo) {
    return { Name: pseudo.name, Id: pseudo.id, Created: '0001-01-01T00:00:00Z', Scope: 'local', Driver: pseudo.driver, EnableIPv6: false, IPAM: { Driver: 'default', Options: null, Config: [] },
      Internal: false, Attachable: false, Ingress: false, ConfigFrom: { Network: '' }, ConfigOnly: false, Containers: {}, Options: {}, Labels: {} };
  }
  if (!n) throw new TsrunError(`network ${key} not found`, 1);
  const containers: Record<string, unknown> = {};
  for (const a of net.store.listAttachments(root)) {
    if (!net.attachmentOf(root, a.containerId)) continue;
    for (const e of a.endpoints) {
      if (e.networkId !== n.id) continue;
      containers[a.containerId] = { Name: a.name, EndpointID: crypto.createHash('sha256').update(a.containerId + e.networkId).digest('hex'), MacAddress: e.mac, IPv4Address: `${e.ip}/${e.prefix}`, IPv6Address: '' };
    }
  }
  return {
    Name: n.name, Id: n.id, Created: n.created, Scope: 'local', Driver: 'bridge', EnableIPv6: false,
    IPAM: { Driver: 'default', Options: {}, Config: [{ Subnet: n.subnet, Gateway: n.gateway }] },
    Internal: n.internal, Attachable: false, Ingress: false, ConfigFrom: { Network: '' }, ConfigOnly: false, Containers: containers,
    Options: { 'com.docker.network.bridge.name': n.bridge, ...(n.isDefault ? { 'com.docker.network.bridge.default_bridge': 'true' } : {}), ...(n.mtu ? { [net.MTU_OPTION]: String(n.mtu) } : {}) }, Labels: n.labels,
  };
}

function inspect(argv: string[], g: Globals): number {
  const p = parse(argv, { str: ['format'], bool: ['verbose'], alias: { f: 'format', v: 'verbose' } }, 'network inspect');
  if (!p.args.length) throw new TsrunError('"network inspect" requires at least 1 argument', 1);
  net.reconcile(g.root);
  const out: unknown[] = [];
  let code = 0;
  for (const k of p.args) {
    try { out.push(inspectOne(g.root, k)); } catch (e) { process.stderr.write(`Error response from daemon: ${(e as Error).message}\n`); code = 1; }
  }
  const format = str(p, 'format');
  if (format) for (const o of out) process.stdout.write(renderTemplate(format, o) + '\n');
  else process.stdout.write(JSON.stringify(out, null, 4) + '\n');
  return code;
}

function rm(argv: string[], g: Globals): number {
  const p = parse(argv, { bool: ['force'], alias: { f: 'force' } }, 'network rm');
  if (!p.args.length) throw new TsrunError('"network rm" requires at least 1 argument', 1);
  net.reconcile(g.root);
  let code = 0;
  for (const k of p.args) {
    try {
      if (PSEUDO.some((x) => x.name === k)) throw new TsrunError(`${k} is a pre-defined network and cannot be removed`, 1);
      net.removeNetwork(g.root, k);
      process.stdout.write(k + '\n');
    } catch (e) {
      if (p.flags.force && /not found/.test((e as Error).message)) continue;
      process.stderr.write(`Error response from daemon: ${(e as Error).message}\n`);
      code = 1;
    }
  }
  return code;
}

/** User networks that no container uses or names (a stopped one still needs its network to start again). */
export function pruneUnusedNetworks(root: string, filters: string[]): string[] {
  const keep = pruneFilter('network prune', filters);
  const named = new Set(listContainers(root).flatMap((c) => [c.net?.mode, ...(c.net?.extra ?? []).map((e) => e.network)]).filter((x): x is string => !!x));
  net.reconcile(root);
  return net.pruneNetworks(root, (n) => !named.has(n.name) && !named.has(n.id) && keep({ created: n.created, labels: n.labels }));
}

function prune(argv: string[], g: Globals): number {
  const p = parse(argv, { bool: ['force'], multi: ['filter'], alias: { f: 'force' } }, 'network prune');
  const filters = (p.flags.filter as string[] | undefined) ?? [];
  pruneFilter('network prune', filters);
  confirmOrCancel('network prune', !!p.flags.force, 'WARNING! This will remove all custom networks not used by at least one container.');
  const gone = pruneUnusedNetworks(g.root, filters);
  if (gone.length) process.stdout.write(`Deleted Networks:\n${gone.join('\n')}\n\n`);
  return 0;
}

function connect(argv: string[], g: Globals): number {
  const p = parse(argv, { str: ['ip'], multi: ['alias', 'link'] }, 'network connect');
  if (p.args.length !== 2) throw new TsrunError('"network connect" requires exactly 2 arguments: tsrun network connect [OPTIONS] NETWORK CONTAINER', 1);
  const c = findContainer(g.root, p.args[1]);
  const hostname = c.id.slice(0, 12);
  const next = net.connect(g.root, { id: c.id, name: c.name, net: c.net, hostname }, p.args[0], { aliases: (p.flags.alias as string[]) ?? [], ip: str(p, 'ip') });
  saveContainer(g.root, { ...findContainer(g.root, c.id), net: next });
  return 0;
}

function disconnect(argv: string[], g: Globals): number {
  const p = parse(argv, { bool: ['force'], alias: { f: 'force' } }, 'network disconnect');
  if (p.args.length !== 2) throw new TsrunError('"network disconnect" requires exactly 2 arguments: tsrun network disconnect [OPTIONS] NETWORK CONTAINER', 1);
  const c = findContainer(g.root, p.args[1]);
  const next = net.disconnect(g.root, { id: c.id, name: c.name, net: c.net, hostname: c.id.slice(0, 12) }, p.args[0]);
  saveContainer(g.root, { ...findContainer(g.root, c.id), net: next });
  return 0;
}
