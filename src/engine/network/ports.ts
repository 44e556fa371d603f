// -p/--publish and -P: parsing, docker's formats for `port` and the PORTS column, host port choice.
import fs = require('fs');
import { spawnSync } from 'child_process';
import { TsrunError } from '../../runtime/errors';
import { isIPv4 } from './addr';
import type { PortBinding, Attachment } from './store';
import type { NetConfig } from './config';

/** What the user asked for; hostPort 0 = a free port chosen at start. */
export type PortRequest = PortBinding;

/** -p [IP:][HOSTPORT:]CONTAINERPORT[/tcp|/udp], with ranges HOST-RANGE:CONTAINER-RANGE of equal length. */
export function parsePublish(spec: string): PortRequest[] {
  const bad = (why: string) => new TsrunError(`invalid argument "${spec}" for "-p, --publish" flag: ${why}`, 125);
  let s = spec, proto = 'tcp';
  const slash = s.lastIndexOf('/');
  if (slash >= 0) { proto = s.slice(slash + 1).toLowerCase(); s = s.slice(0, slash); }
  if (proto !== 'tcp' && proto !== 'udp') throw bad(`invalid proto: ${proto}`);
  const parts = s.split(':');
  let ip = '', host = '', cont: string;
  if (parts.length === 1) cont = parts[0];
  else if (parts.length === 2) [host, cont] = parts;
  else if (parts.length === 3) [ip, host, cont] = parts;
  else throw bad('too many colons');
  if (ip && !isIPv4(ip)) throw bad(`invalid IP address: ${ip}`);
  const range = (r: string, what: string): [number, number] => {
    const m = /^(\d+)(?:-(\d+))?$/.exec(r);
    if (!m) throw bad(`invalid ${what} port: ${r}`);
    const a = Number(m[1]), b = m[2] === undefined ? a : Number(m[2]);
    if (a < 1 || b > 65535 || b < a) throw bad(`invalid ${what} port: ${r}`);
    return [a, b];
  };
  const [c0, c1] = range(cont, 'containerPort');
  const [h0, h1] = host === '' ? [0, 0] : range(host, 'hostPort');
  if (host !== '' && h1 - h0 !== c1 - c0 && h0 !== h1) throw bad('ranges of different lengths');
  const out: PortRequest[] = [];
  for (let i = 0; i <= c1 - c0; i++) {
    out.push({ proto: proto as 'tcp' | 'udp', hostIp: ip || '0.0.0.0', hostPort: host === '' ? 0 : h0 === h1 ? h0 : h0 + i, containerPort: c0 + i });
  }
  return out;
}

/** The image's ExposedPorts ("80/tcp") as random-port requests (-P). */
export function exposedRequests(exposed: Record<string, unknown> | undefined): PortRequest[] {
  return Object.keys(exposed ?? {}).map((k) => {
    const [p, proto = 'tcp'] = k.split('/');
    return { proto: proto === 'udp' ? 'udp' : 'tcp', hostIp: '0.0.0.0', hostPort: 0, containerPort: Number(p) } as PortRequest;
  }).filter((r) => r.containerPort > 0);
}

/** `0.0.0.0:8080->80/tcp` */
export function formatPs(p: PortBinding): string {
  return `${p.hostIp}:${p.hostPort}->${p.containerPort}/${p.proto}`;
}

/** `80/tcp -> 0.0.0.0:8080` */
export function formatPort(p: PortBinding): string {
  return `${p.containerPort}/${p.proto} -> ${p.hostIp}:${p.hostPort}`;
}

/**
 * Ports something in this network namespace listens on: `ss -Hlntu` (inet_diag walks only the
 * listening sockets, ~3 ms); /proc/net/tcp (the reader's namespace, but a walk of the kernel's whole
 * socket hash, ~8 ms) when there is no ss.
 */
export function listeningPorts(): { tcp: Set<number>; udp: Set<number> } {
  const r = spawnSync('ss', ['-Hlntu'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return { tcp: listening('tcp'), udp: listening('udp') };
  const out = { tcp: new Set<number>(), udp: new Set<number>() };
  for (const line of r.stdout.split('\n')) {
    const c = line.trim().split(/\s+/);
    if ((c[0] !== 'tcp' && c[0] !== 'udp') || !c[4]) continue;
    out[c[0]].add(Number(c[4].slice(c[4].lastIndexOf(':') + 1)));
  }
  return out;
}

/** Ports something in this network namespace listens on (/proc/net is the reader's namespace). */
export function listening(proto: 'tcp' | 'udp'): Set<number> {
  const out = new Set<number>();
  for (const f of [`/proc/net/${proto}`, `/proc/net/${proto}6`]) {
    let text = '';
    try { text = fs.readFileSync(f, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const c = line.trim().split(/\s+/);
      if (c.length < 4) continue;
      if (proto === 'tcp' && c[3] !== '0A') continue; // LISTEN
      if (proto === 'udp' && c[2] !== '00000000:0000' && !c[2].endsWith(':0000')) continue;
      out.add(parseInt(c[1].split(':')[1], 16));
    }
  }
  return out;
}

/** The host's ephemeral range, where random host ports come from (as Docker's port allocator). */
export function ephemeralRange(): [number, number] {
  try {
    const [a, b] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (a > 0 && b >= a) return [a, b];
  } catch { /* default */ }
  return [32768, 60999];
}

/** Host ports for a container's requests: refused when taken by a container or a listener here; 0 → a free one. */
export function allocatePorts(atts: Attachment[], net: NetConfig): PortBinding[] {
  const taken = new Set<string>();
  for (const a of atts) for (const p of a.ports) taken.add(`${p.proto}:${p.hostPort}`);
  // what listens in this namespace: a DNAT rule would silently shadow a host service on that port
  let cache: ReturnType<typeof listeningPorts> | undefined;
  const listen = { get tcp() { return (cache ??= listeningPorts()).tcp; }, get udp() { return (cache ??= listeningPorts()).udp; } };
  const out: PortBinding[] = [];
  const [lo, hi] = ephemeralRange();
  for (const r of net.ports ?? []) {
    let port = r.hostPort;
    if (port === 0) {
      for (let p = lo; p <= hi; p++) if (!taken.has(`${r.proto}:${p}`) && !listen[r.proto].has(p)) { port = p; break; }
      if (port === 0) throw new TsrunError(`no free host port for ${r.containerPort}/${r.proto}`, 125);
    } else if (taken.has(`${r.proto}:${port}`) || listen[r.proto].has(port)) {
      throw new TsrunError(`driver failed programming external connectivity: Bind for ${r.hostIp}:${port} failed: port is already allocated`, 125);
    }
    taken.add(`${r.proto}:${port}`);
    out.push({ ...r, hostPort: port });
  }
  return out;
}

