// /etc/hosts, /etc/hostname and /etc/resolv.conf of a container, written in its directory and
// bind-mounted into it (as Docker does). Rewritten in place (same inode) while it runs.
import fs = require('fs');
import path = require('path');
import { isIPv4 } from './addr';
import * as st from './store';
import type { NetConfig } from './config';

const LOCAL = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback', 'fe00::0\tip6-localnet',
  'ff00::0\tip6-mcastprefix', 'ff02::1\tip6-allnodes', 'ff02::2\tip6-allrouters'];

export function hostsText(o: { ip?: string; hostname: string; addHosts?: string[]; links?: { ip: string; alias: string; name: string }[] }): string {
  const lines = [...LOCAL];
  for (const h of o.addHosts ?? []) {
    const i = h.indexOf(':');
    lines.push(`${h.slice(i + 1)}\t${h.slice(0, i)}`);
  }
  for (const l of o.links ?? []) lines.push(`${l.ip}\t${l.alias === l.name ? l.name : `${l.alias} ${l.name}`}`);
  if (o.ip) lines.push(`${o.ip}\t${o.hostname}`);
  return lines.join('\n') + '\n';
}

/** The host's resolv.conf without loopback nameservers (unreachable from a container); Docker's fallback. */
export function resolvText(o: { nameservers?: string[]; dns?: string[]; search?: string[]; options?: string[] }): string {
  let host = '';
  try { host = fs.readFileSync('/etc/resolv.conf', 'utf8'); } catch { /* none */ }
  const hostNs: string[] = [], search: string[] = [], options: string[] = [];
  for (const line of host.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[0] === 'nameserver' && f[1] && !/^127\./.test(f[1]) && f[1] !== '::1') hostNs.push(f[1]);
    else if (f[0] === 'search' || f[0] === 'domain') search.push(...f.slice(1));
    else if (f[0] === 'options') options.push(...f.slice(1));
  }
  let ns = o.nameservers ?? (o.dns?.length ? o.dns : hostNs);
  if (!ns.length) ns = ['8.8.8.8', '8.8.4.4'];
  const srch = o.search?.length ? o.search : search;
  const opts = o.options?.length ? o.options : options;
  return [...ns.map((s) => `nameserver ${s}`), ...(srch.length ? [`search ${srch.join(' ')}`] : []), ...(opts.length ? [`options ${opts.join(' ')}`] : [])].join('\n') + '\n';
}

/** Upstream resolvers of the embedded DNS: the host's, loopback ones excluded. */
export function upstreamResolvers(): string[] {
  let host = '';
  try { host = fs.readFileSync('/etc/resolv.conf', 'utf8'); } catch { /* none */ }
  return host.split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f[0] === 'nameserver' && isIPv4(f[1] ?? '') && !/^127\./.test(f[1])).map((f) => f[1]);
}

/** Write without replacing the inode: a running container's bind mount sees the new text. */
export function writeInPlace(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text, { mode: 0o644 });
}

/** A started container's hosts, hostname and resolv.conf (user networks: the resolver on the gateway). */
export function writeFiles(root: string, c: { id: string; hostname: string }, net: NetConfig, a: st.Attachment): void {
  const dir = path.join(root, 'containers', c.id);
  const ep = a.endpoints[0];
  const links = (net.links ?? []).flatMap((l) => {
    const t = st.listAttachments(root).find((x) => x.containerId === l.name || x.name === l.name);
    return t?.endpoints[0] ? [{ ip: t.endpoints[0].ip, alias: l.alias, name: t.name }] : [];
  });
  writeInPlace(path.join(dir, 'hosts'), hostsText({ ip: ep?.ip, hostname: c.hostname, addHosts: net.addHosts, links }));
  writeInPlace(path.join(dir, 'hostname'), c.hostname + '\n');
  const userNet = a.endpoints.find((e) => st.listNetworks(root).find((n) => n.id === e.networkId)?.dns);
  writeInPlace(path.join(dir, 'resolv.conf'), userNet
    // Docker's 127.0.0.11 alone: the embedded resolver forwards what it does not know to --dns (else the host's)
    ? resolvText({ nameservers: [userNet.gateway], search: net.dnsSearch, options: net.dnsOptions })
    : resolvText({ dns: net.dns, search: net.dnsSearch, options: net.dnsOptions }));
}

