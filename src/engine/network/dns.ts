// The embedded DNS of a user-defined network: one small resolver process per network (not per
// container), listening on the network's gateway address, port 53/udp, in tsrun's namespace. It
// answers A queries for the names, aliases and short ids of the containers attached to its network
// (read from the attachments on disk, reloaded when that directory changes) and forwards every
// other query to the client container's --dns servers, else the host's resolvers (loopback ones
// excluded), as Docker's 127.0.0.11 does.
import dgram = require('dgram');
import fs = require('fs');
import path = require('path');
import * as st from './store';
import { upstreamResolvers } from './files';

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

export function serve(root: string, networkId: string): void {
  const n = st.listNetworks(root).find((x) => x.id === networkId);
  if (!n) { process.exitCode = 1; return; }
  // names per network, and which networks each client (by its address on this network) is on: a
  // container connected to several networks resolves the names of all of them, as with Docker
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
        if (e.networkId === n.id) {
          clients.set(e.ip, a.endpoints.map((x) => x.networkId));
          if (a.dns?.length) dns.set(e.ip, a.dns);
        }
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
  const lookup = (q: string, client: string): string[] | undefined => {
    const c = load();
    const nets = [n.id, ...(c.clients.get(client) ?? []).filter((x) => x !== n.id)];
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
  const sock = dgram.createSocket('udp4');
  const reply = (msg: Buffer, rinfo: dgram.RemoteInfo) => sock.send(msg, rinfo.port, rinfo.address);
  const fail = (q: Buffer, rcode: number, rinfo: dgram.RemoteInfo, qend: number) => {
    const h = Buffer.from(q.subarray(0, qend));
    h[2] = 0x80 | (q[2] & 0x01); h[3] = 0x80 | rcode; // QR, RD copied, RA, rcode
    h.writeUInt16BE(0, 6); h.writeUInt16BE(0, 8); h.writeUInt16BE(0, 10);
    reply(h, rinfo);
  };
  sock.on('message', (q, rinfo) => {
    let name: string, qend: number, qtype: number;
    try {
      if (q.length < 12 || (q[2] & 0x80) || q.readUInt16BE(4) !== 1) return;
      [name, qend] = readName(q, 12);
      qtype = q.readUInt16BE(qend);
      qend += 4;
    } catch {
      return;
    }
    const ips = lookup(name, rinfo.address);
    if (ips) {
      const answers = qtype === 1 ? ips : [];
      const head = Buffer.from(q.subarray(0, qend));
      head[2] = 0x84 | (q[2] & 0x01); head[3] = 0x80; // QR, AA, RD, RA, NOERROR
      head.writeUInt16BE(answers.length, 6); head.writeUInt16BE(0, 8); head.writeUInt16BE(0, 10);
      const rrs = answers.map((ip) => {
        const rr = Buffer.alloc(16);
        rr.writeUInt16BE(0xc00c, 0); rr.writeUInt16BE(1, 2); rr.writeUInt16BE(1, 4); rr.writeUInt32BE(600, 6); rr.writeUInt16BE(4, 10);
        ip.split('.').forEach((b, i) => { rr[12 + i] = Number(b); });
        return rr;
      });
      reply(Buffer.concat([head, ...rrs]), rinfo);
      return;
    }
    // the client's own --dns servers, else the host's
    const to = load().dns.get(rinfo.address)?.[0] ?? upstream[0];
    if (!to) { fail(q, 2, rinfo, qend); return; }
    const fw = dgram.createSocket('udp4');
    const timer = setTimeout(() => { fw.close(); fail(q, 2, rinfo, qend); }, 3000);
    fw.on('message', (r) => { clearTimeout(timer); fw.close(); reply(r, rinfo); });
    fw.on('error', () => { clearTimeout(timer); try { fw.close(); } catch { /* closed */ } fail(q, 2, rinfo, qend); });
    fw.send(q, 53, to);
  });
  sock.on('error', (e) => { process.stderr.write(`tsrun dns ${n.name}: ${e.message}\n`); process.exit(1); });
  sock.bind(53, n.gateway, () => {
    const file = path.join(st.networksDir(root), `${n.id}.dns`);
    fs.writeFileSync(file + '.tmp', `${process.pid} ${st.procStart(process.pid)}`);
    fs.renameSync(file + '.tmp', file);
  });
  process.on('SIGTERM', () => process.exit(0));
}
