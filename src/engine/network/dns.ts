// The embedded DNS of the user-defined networks: one small resolver process per state root (not
// per network, not per container), listening on each DNS network's gateway address, port 53 over
// UDP and TCP, in tsrun's namespace. It answers A queries for the names, aliases and short ids of
// the containers attached to the network a query arrives on (read from the attachments on disk,
// reloaded when that directory changes) and forwards every other query to the client container's
// --dns servers, else the host's resolvers (loopback ones excluded), as Docker's 127.0.0.11 does.
//
// Which networks it serves follows the network records: it rescans them on SIGHUP (resolver.ts
// sends one after a network is made or removed, under the network lock), and exits when no DNS
// network is left. Its status file says what it serves (resolver.ts waits on it).
import dgram = require('dgram');
import net = require('net');
import fs = require('fs');
import path = require('path');
import * as st from './store';
import { upstreamResolvers } from './files';

/** <root>/networks/resolver.status (JSON; not *.json, which are network records), written whole (rename) after each scan. */
export interface ResolverStatus {
  pid: number;
  start: string;
  /** counts the scans: a SIGHUP is answered when it has grown */
  gen: number;
  serving: string[];
  failed: Record<string, string>;
}

export function statusFile(root: string): string {
  return path.join(st.networksDir(root), 'resolver.status');
}

const UDP_MAX = 512; // without EDNS, a longer answer is cut and marked TC: the client asks again over TCP
const FORWARD_MS = 3000;
const TCP_IDLE_MS = 10_000;

function readName(buf: Buffer, off: number): [string, number] {
  const labels: string[] = [];
  for (let i = 0; i < 128; i++) {
    const len = buf[off];
    if (len === undefined) throw new Error('short');
    if (len === 0) return [labels.join('.'), off + 1];
    if (len >= 0xc0) throw new Error('compressed name in a question');
    labels.push(buf.subarray(off + 1, off + 1 + len).toString('latin1'));
    off += 1 + len;
  }
  throw new Error('too long');
}

/** A query's header and question only, with the flags and rcode of an answer. */
function answerHead(q: Buffer, qend: number, flags: number, rcode: number, count: number): Buffer {
  const h = Buffer.from(q.subarray(0, qend));
  h[2] = flags | (q[2] & 0x01); h[3] = 0x80 | rcode; // QR (+AA), RD copied, RA
  h.writeUInt16BE(count, 6); h.writeUInt16BE(0, 8); h.writeUInt16BE(0, 10);
  return h;
}

/** Forward q to a server over UDP, or over TCP (length-prefixed) when the client asked over TCP. */
function forward(q: Buffer, to: string, tcp: boolean): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: Buffer | undefined, close: () => void) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try { close(); } catch { /* closed */ }
      resolve(r);
    };
    let close = () => { /* set below */ };
    const timer = setTimeout(() => finish(undefined, close), FORWARD_MS);
    if (!tcp) {
      const s = dgram.createSocket('udp4');
      close = () => s.close();
      s.on('message', (r) => finish(r, close));
      s.on('error', () => finish(undefined, close));
      // a send error (no route to the server) comes to the callback, not as an 'error' event
      s.send(q, 53, to, (e) => { if (e) finish(undefined, close); });
      return;
    }
    const c = net.connect({ port: 53, host: to });
    close = () => c.destroy();
    let buf = Buffer.alloc(0);
    c.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) finish(buf.subarray(2, 2 + buf.readUInt16BE(0)), close);
    });
    c.on('error', () => finish(undefined, close));
    c.on('end', () => finish(undefined, close));
    const len = Buffer.alloc(2);
    len.writeUInt16BE(q.length);
    c.write(Buffer.concat([len, q]));
  });
}

export function serve(root: string): void {
  // names per network, and which networks each client (by its address) is on: a container
  // connected to several networks resolves the names of all of them, as with Docker
  let cache: { mtime: number; names: Map<string, Map<string, string[]>>; clients: Map<string, string[]>; dns: Map<string, string[]> } | undefined;
  const load = () => {
    let mtime = 0;
    try { mtime = fs.statSync(st.endpointsDir(root)).mtimeMs; } catch { /* none */ }
    if (cache && cache.mtime === mtime) return cache;
    const names = new Map<string, Map<string, string[]>>();
    const clients = new Map<string, string[]>();
    const dns = new Map<string, string[]>();
    for (const a of st.listAttachments(root)) {
      if (!st.ownerAlive(a)) continue;
      for (const e of a.endpoints) {
        const m = names.get(e.networkId) ?? new Map<string, string[]>();
        names.set(e.networkId, m);
        for (const alias of e.aliases) m.set(alias.toLowerCase(), [...(m.get(alias.toLowerCase()) ?? []), e.ip]);
        clients.set(`${e.networkId} ${e.ip}`, a.endpoints.map((x) => x.networkId));
        if (a.dns?.length) dns.set(`${e.networkId} ${e.ip}`, a.dns);
      }
    }
    cache = { mtime, names, clients, dns };
    return cache;
  };
  let search: string[] = [];
  try {
    search = fs.readFileSync('/etc/resolv.conf', 'utf8').split('\n').map((l) => l.trim().split(/\s+/))
      .filter((f) => f[0] === 'search' || f[0] === 'domain').flatMap((f) => f.slice(1).map((d) => d.toLowerCase()));
  } catch { /* none */ }
  const lookup = (q: string, netId: string, client: string): string[] | undefined => {
    const c = load();
    const nets = [netId, ...(c.clients.get(`${netId} ${client}`) ?? []).filter((x) => x !== netId)];
    const k = q.toLowerCase();
    for (const key of [k, ...search.filter((d) => k.endsWith('.' + d)).map((d) => k.slice(0, -d.length - 1))]) {
      for (const id of nets) {
        const hit = c.names.get(id)?.get(key);
        if (hit) return hit;
      }
    }
    return undefined;
  };
  const upstream = upstreamResolvers();

  /** The answer to q from client on network netId; undefined: not a query, no answer. */
  const handle = async (q: Buffer, netId: string, client: string, tcp: boolean): Promise<Buffer | undefined> => {
    let name: string, qend: number, qtype: number;
    try {
      if (q.length < 12 || (q[2] & 0x80) || q.readUInt16BE(4) !== 1) return undefined;
      [name, qend] = readName(q, 12);
      qtype = q.readUInt16BE(qend);
      qend += 4;
    } catch {
      return undefined;
    }
    const ips = lookup(name, netId, client);
    if (ips) {
      let answers = qtype === 1 ? ips : [];
      let flags = 0x84; // QR, AA
      if (!tcp && qend + 16 * answers.length > UDP_MAX) {
        answers = answers.slice(0, Math.floor((UDP_MAX - qend) / 16));
        flags |= 0x02; // TC
      }
      const rrs = answers.map((ip) => {
        const rr = Buffer.alloc(16);
        rr.writeUInt16BE(0xc00c, 0); rr.writeUInt16BE(1, 2); rr.writeUInt16BE(1, 4); rr.writeUInt32BE(600, 6); rr.writeUInt16BE(4, 10);
        ip.split('.').forEach((b, i) => { rr[12 + i] = Number(b); });
        return rr;
      });
      return Buffer.concat([answerHead(q, qend, flags, 0, answers.length), ...rrs]);
    }
    // the client's own --dns servers, else the host's
    const to = load().dns.get(`${netId} ${client}`)?.[0] ?? upstream[0];
    const r = to ? await forward(q, to, tcp) : undefined;
    return r ?? answerHead(q, qend, 0x80, 2, 0); // SERVFAIL
  };

  const listen = (n: st.NetworkRecord): Promise<{ gateway: string; udp: dgram.Socket; tcp: net.Server }> => new Promise((resolve, reject) => {
    const udp = dgram.createSocket('udp4');
    const tcp = net.createServer((c) => {
      c.setTimeout(TCP_IDLE_MS, () => c.destroy());
      c.on('error', () => c.destroy());
      let buf = Buffer.alloc(0);
      c.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          const q = buf.subarray(2, 2 + buf.readUInt16BE(0));
          buf = buf.subarray(2 + q.length);
          void handle(q, n.id, (c.remoteAddress ?? '').replace(/^::ffff:/, ''), true).then((r) => {
            if (!r || c.destroyed) return;
            const len = Buffer.alloc(2);
            len.writeUInt16BE(r.length);
            c.write(Buffer.concat([len, r]));
          });
        }
      });
    });
    const fail = (e: Error) => {
      try { udp.close(); } catch { /* closed */ }
      try { tcp.close(); } catch { /* closed */ }
      reject(e);
    };
    udp.on('message', (q, rinfo) => {
      void handle(q, n.id, rinfo.address, false).then((r) => { if (r) udp.send(r, rinfo.port, rinfo.address); });
    });
    udp.once('error', fail);
    udp.bind(53, n.gateway, () => {
      tcp.once('error', fail);
      tcp.listen(53, n.gateway, () => {
        udp.off('error', fail); tcp.off('error', fail);
        udp.on('error', () => { /* a send to a client that went away */ });
        resolve({ gateway: n.gateway, udp, tcp });
      });
    });
  });

  const bound = new Map<string, { gateway: string; udp: dgram.Socket; tcp: net.Server }>();
  const failed: Record<string, string> = {};
  let gen = 0;
  const start = st.procStart(process.pid) ?? '';
  const file = statusFile(root);
  const scan = async () => {
    let want: st.NetworkRecord[] = [];
    try { want = st.listNetworks(root).filter((n) => n.dns); } catch { /* the root went */ }
    for (const [id, b] of bound) {
      if (want.some((n) => n.id === id && n.gateway === b.gateway)) continue;
      b.udp.close();
      b.tcp.close();
      bound.delete(id);
    }
    for (const id of Object.keys(failed)) delete failed[id];
    for (const n of want) {
      if (bound.has(n.id)) continue;
      try {
        bound.set(n.id, await listen(n));
      } catch (e) {
        failed[n.id] = `listen on ${n.gateway}:53: ${(e as Error).message}`;
      }
    }
    if (!want.length) {
      try { if ((JSON.parse(fs.readFileSync(file, 'utf8')) as ResolverStatus).pid === process.pid) fs.rmSync(file, { force: true }); } catch { /* none */ }
      process.exit(0);
    }
    const s: ResolverStatus = { pid: process.pid, start, gen: ++gen, serving: [...bound.keys()], failed };
    fs.writeFileSync(file + '.tmp', JSON.stringify(s));
    fs.renameSync(file + '.tmp', file);
  };
  let queue = Promise.resolve();
  const rescan = () => { queue = queue.then(scan, scan); };
  process.on('SIGHUP', rescan);
  process.on('SIGTERM', () => process.exit(0));
  rescan();
}
