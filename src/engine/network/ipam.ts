// Addresses: the ones in use are those of the attachments; new ones round-robin from the last given.
import fs = require('fs');
import path = require('path');
import crypto = require('crypto');
import { TsrunError } from '../../runtime/errors';
import * as st from './store';
import { ipToInt, intToIp, parseCidr, contains, hostRange } from './addr';

function usedAddresses(atts: st.Attachment[], n: st.NetworkRecord): Set<number> {
  const used = new Set<number>([ipToInt(n.gateway)]);
  for (const a of atts) for (const e of a.endpoints) if (e.networkId === n.id) used.add(ipToInt(e.ip));
  return used;
}

export function allocate(root: string, atts: st.Attachment[], n: st.NetworkRecord, want?: string): number {
  const s = parseCidr(n.subnet);
  const used = usedAddresses(atts, n);
  if (want) {
    const ip = ipToInt(want);
    if (!contains(s, ip)) throw new TsrunError(`invalid address ${want}: it does not belong to any of this network's subnets (${n.subnet})`, 125);
    if (used.has(ip)) throw new TsrunError(`Address already in use: ${want} on network ${n.name}`, 125);
    return ip;
  }
  // round robin from the last address given out: an address just released (whose veth the kernel
  // may still be deleting) is the last to be handed out again
  const [lo, hi] = hostRange(s);
  let last = lo - 1;
  const file = path.join(st.networksDir(root), `${n.id}.last`);
  try { last = ipToInt(fs.readFileSync(file, 'utf8').trim()); } catch { /* first */ }
  if (last < lo - 1 || last > hi) last = lo - 1;
  for (let k = 1; k <= hi - lo + 1; k++) {
    const ip = lo + ((last - lo + k) % (hi - lo + 1));
    if (!used.has(ip)) { fs.writeFileSync(file, intToIp(ip)); return ip; }
  }
  throw new TsrunError(`no available IPv4 addresses on network ${n.name} (${n.subnet})`, 125);
}

export function vethName(): string {
  return 'veth' + crypto.randomBytes(4).toString('hex').slice(0, 7);
}

