// A container's network mode → its config.json (namespace, /etc files) and its recorded NetConfig.
import os = require('os');
import path = require('path');
import fs = require('fs');
import type { Spec } from '../../runtime/spec';
import { TsrunError } from '../../runtime/errors';
import { isIPv4, intToIp, hostRange, parseCidr } from './addr';
import { hostsText } from './files';
import { parsePublish, exposedRequests } from './ports';
import { defaultNetworkMode, isBridgeLike, type NetConfig } from './config';
import * as st from './store';

/** The flags of run/create that concern the network, as the CLI parsed them. */
export interface NetFlags {
  network?: string;
  aliases?: string[];
  ip?: string;
  mac?: string;
  publish?: string[];
  publishAll?: boolean;
  expose?: string[];
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  addHosts?: string[];
  links?: string[];
}

/** Validate the flags against the networks and containers there are; `lookup` finds a container's id by name. */
export function netConfigFor(root: string, f: NetFlags, exposed: Record<string, unknown> | undefined, lookup: (key: string) => { id: string; name: string }): NetConfig {
  let mode = f.network ?? defaultNetworkMode();
  if (mode === 'default') mode = 'bridge';
  const conflict = (what: string) => new TsrunError(`conflicting options: ${what} and the network mode`, 125);
  if (mode.startsWith('container:')) {
    const t = lookup(mode.slice('container:'.length));
    mode = `container:${t.id}`;
    if (f.publish?.length || f.publishAll) throw conflict('port publishing');
    if (f.dns?.length) throw conflict('dns');
    if (f.addHosts?.length) throw conflict('custom host-to-IP mapping');
    if (f.mac) throw conflict('mac-address');
  } else if (mode !== 'none' && mode !== 'host' && mode !== 'bridge') {
    const n = st.findNetwork(root, mode);
    if (!n) throw new TsrunError(`network ${mode} not found`, 125);
    mode = n.name;
  }
  if (f.ip && (!isBridgeLike(mode) || mode === 'bridge')) throw new TsrunError('user specified IP address is supported on user defined networks only', 125);
  if (f.ip && !isIPv4(f.ip)) throw new TsrunError(`invalid IPv4 address: ${f.ip}`, 125);
  if (f.aliases?.length && (!isBridgeLike(mode) || mode === 'bridge')) throw new TsrunError('network-scoped alias is supported only for containers in user defined networks', 125);
  if (f.mac && !/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(f.mac)) throw new TsrunError(`invalid MAC address: ${f.mac}`, 125);
  for (const h of f.addHosts ?? []) {
    const i = h.indexOf(':');
    if (i <= 0 || !(isIPv4(h.slice(i + 1)) || h.slice(i + 1) === 'host-gateway' || h.slice(i + 1).includes(':'))) throw new TsrunError(`invalid argument "${h}" for "--add-host" flag: bad format for add-host: "${h}"`, 125);
  }
  for (const d of f.dns ?? []) if (!isIPv4(d) && !d.includes(':')) throw new TsrunError(`invalid argument "${d}" for "--dns" flag: ${d} is not an ip address`, 125);
  let ports = (f.publish ?? []).flatMap(parsePublish);
  if (f.publishAll) {
    const all = { ...(exposed ?? {}), ...Object.fromEntries((f.expose ?? []).map((e) => [e.includes('/') ? e : e + '/tcp', {}])) };
    for (const r of exposedRequests(all)) if (!ports.some((p) => p.containerPort === r.containerPort && p.proto === r.proto)) ports.push(r);
  }
  if (mode === 'host' && ports.length) {
    process.stderr.write('WARNING: Published ports are discarded when using host network mode\n');
    ports = [];
  }
  if (mode === 'none' && ports.length) throw conflict('port publishing');
  const links = (f.links ?? []).map((l) => {
    const [name, alias] = l.split(':');
    const t = lookup(name);
    return { name: t.id, alias: alias || t.name };
  });
  if (links.length && mode !== 'bridge') throw new TsrunError('--link is only supported on the default bridge network (use a user-defined network and its DNS)', 125);
  // host-gateway: the default bridge's gateway, the host's address as containers see it
  const gw = () => st.listNetworks(root).find((n) => n.isDefault)?.gateway
    ?? (process.env.TSRUN_BRIDGE_SUBNET ? intToIp(hostRange(parseCidr(process.env.TSRUN_BRIDGE_SUBNET))[0]) : '172.17.0.1');
  const host = (f.addHosts ?? []).map((h) => h.endsWith(':host-gateway') ? h.replace(/host-gateway$/, gw()) : h);
  const net: NetConfig = { mode };
  if (f.aliases?.length) net.aliases = f.aliases;
  if (f.ip) net.ip = f.ip;
  if (f.mac) net.mac = f.mac.toLowerCase();
  if (ports.length) net.ports = ports;
  if (f.dns?.length) net.dns = f.dns;
  if (f.dnsSearch?.length) net.dnsSearch = f.dnsSearch;
  if (f.dnsOptions?.length) net.dnsOptions = f.dnsOptions;
  if (host.length) net.addHosts = host;
  if (links.length) net.links = links;
  return net;
}

/** config.json for the mode: the namespace (joined by path, shared with the host, or private) and the /etc files. */
export function applyNetworkToSpec(spec: Spec, root: string, id: string, net: NetConfig, hostnameGiven: boolean): void {
  const linux = spec.linux ?? (spec.linux = {});
  const nss = linux.namespaces ?? (linux.namespaces = []);
  if (net.mode === 'none') {
    // only lo; /etc/hosts is written when --add-host asks for entries (docker writes one always)
    if (net.addHosts?.length && !(spec.mounts ?? []).some((m) => path.posix.normalize(m.destination) === '/etc/hosts')) {
      const source = path.join(path.resolve(root), 'containers', id, 'hosts');
      fs.writeFileSync(source, hostsText({ hostname: spec.hostname ?? id.slice(0, 12), addHosts: net.addHosts }));
      (spec.mounts ??= []).push({ destination: '/etc/hosts', type: 'bind', source, options: ['rbind', 'rprivate'] });
    }
    return;
  }
  const dirOf = (cid: string) => path.join(path.resolve(root), 'containers', cid);
  let files: string[] = ['hosts', 'hostname', 'resolv.conf'];
  let from = dirOf(id);
  if (net.mode === 'host') {
    linux.namespaces = nss.filter((n) => n.type !== 'network');
    if (!hostnameGiven) spec.hostname = os.hostname();
  } else if (net.mode.startsWith('container:')) {
    const target = net.mode.slice('container:'.length);
    for (const n of nss) if (n.type === 'network') n.path = st.netnsPath(root, target);
    from = dirOf(target);
    // the target's files, when it has them (a target in `none` mode has none)
    files = ['hosts', 'resolv.conf'].filter((f) => fs.existsSync(path.join(from, f)));
  } else {
    for (const n of nss) if (n.type === 'network') n.path = st.netnsPath(root, id);
  }
  const taken = new Set((spec.mounts ?? []).map((m) => path.posix.normalize(m.destination)));
  for (const f of files) {
    if (taken.has('/etc/' + f)) continue;
    const source = path.join(from, f);
    if (from === dirOf(id)) { try { fs.mkdirSync(from, { recursive: true }); fs.writeFileSync(source, '', { flag: 'a' }); } catch { /* written at start */ } }
    (spec.mounts ??= []).push({ destination: '/etc/' + f, type: 'bind', source, options: ['rbind', 'rprivate'] });
  }
}
