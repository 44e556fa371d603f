// tsrun's iptables rules, in chains of its own (like Docker's DOCKER and DOCKER-ISOLATION-*):
//   nat    TSRUN              DNAT of published ports (jumped to from PREROUTING and OUTPUT for local
//                             destinations: the OUTPUT jump + route_localnet on the bridge make
//                             localhost:PORT work without a userland proxy, as Docker's
//                             --userland-proxy=false does)
//          TSRUN-POSTROUTING  MASQUERADE of each subnet going out, of host-originated (e.g. 127.0.0.1)
//                             traffic into a bridge, and hairpin traffic
//   filter TSRUN-ISOLATION-1/2  drop traffic from one tsrun bridge to another
//          TSRUN-FORWARD      accept what the bridges send and what published ports let in
// The chains' contents are a pure function of the state on disk (networks + attachments), written
// whole by one `iptables-restore --noflush` (declaring a chain flushes it): atomic, idempotent, and a
// crash half-way is repaired by the next write. Jumps from the built-in chains are added when missing.
// The chains are one state root's: TSRUN-POSTROUTING starts with a comment rule naming it, and
// another root (whose whole rewrite would drop the first one's rules) is refused while it has networks.
import fs = require('fs');
import path = require('path');
import { spawnSync } from 'child_process';
import { TsrunError } from '../../runtime/errors';
import { trace } from '../../runtime/trace';
import { listNetworks, type Attachment, type NetworkRecord } from './store';

let chosen: 'legacy' | 'nft' | '' | undefined;

/**
 * Which iptables: TSRUN_IPTABLES=legacy|nft; else, as Docker-in-Docker's entrypoint and Kubernetes'
 * iptables-wrapper do, the backend that already holds rules in this namespace (more `-A` lines), and
 * the system's `iptables` alternative when neither or both do. The choice is cached per network
 * namespace (by its inode) in `cacheDir`, so the two probes run once.
 */
export function chooseBackend(cacheDir: string): void {
  const env = process.env.TSRUN_IPTABLES;
  if (env === 'legacy' || env === 'nft') { chosen = env; return; }
  let ino = '';
  try { ino = String(fs.statSync('/proc/self/ns/net').ino); } catch { /* no /proc: probe */ }
  const file = path.join(cacheDir, `.iptables-${ino}`);
  try {
    const v = fs.readFileSync(file, 'utf8').trim();
    if (v === 'legacy' || v === 'nft' || v === '') { chosen = v; return; }
  } catch { /* not probed yet */ }
  const rules = (b: string) => {
    const r = spawnSync(`iptables-${b}-save`, [], { encoding: 'utf8' });
    return r.status === 0 ? (r.stdout.match(/^-A /gm) ?? []).length : -1;
  };
  const legacy = rules('legacy'), nft = rules('nft');
  chosen = legacy > 0 && legacy > nft ? 'legacy' : nft > 0 && nft > legacy && legacy >= 0 ? 'nft' : '';
  try { if (ino) fs.writeFileSync(file, chosen); } catch { /* probe again next time */ }
}

function bin(tool: 'save' | 'restore'): string {
  if (chosen === undefined) {
    const b = process.env.TSRUN_IPTABLES;
    chosen = b === 'legacy' || b === 'nft' ? b : '';
  }
  return chosen ? `iptables-${chosen}-${tool}` : `iptables-${tool}`;
}

const JUMPS = {
  nat: ['-A PREROUTING -m addrtype --dst-type LOCAL -j TSRUN', '-A OUTPUT -m addrtype --dst-type LOCAL -j TSRUN', '-A POSTROUTING -j TSRUN-POSTROUTING'],
  filter: ['-A FORWARD -j TSRUN-ISOLATION-1', '-A FORWARD -j TSRUN-FORWARD'],
};

/** The rules of each network (its bridge, its subnet): written when networks come and go. */
export function networkRules(networks: NetworkRecord[]): { nat: string[]; filter: string[] } {
  const nat: string[] = [], filter: string[] = [];
  for (const n of networks) {
    if (!n.internal) nat.push(`-A TSRUN-POSTROUTING -s ${n.subnet} ! -o ${n.bridge} -j MASQUERADE`);
    // host-originated traffic into the bridge (localhost:PORT after the OUTPUT DNAT: source 127.0.0.1),
    // and hairpin: a container reaching a published port of its own bridge
    nat.push(`-A TSRUN-POSTROUTING -o ${n.bridge} -m addrtype --src-type LOCAL -j MASQUERADE`);
    nat.push(`-A TSRUN-POSTROUTING -s ${n.subnet} -o ${n.bridge} -m conntrack --ctstate DNAT -j MASQUERADE`);
    if (n.internal) {
      // --internal: nothing in or out of the bridge but its own traffic
      filter.push(`-A TSRUN-ISOLATION-1 -i ${n.bridge} ! -o ${n.bridge} -j DROP`, `-A TSRUN-ISOLATION-1 ! -i ${n.bridge} -o ${n.bridge} -j DROP`);
    }
    filter.push(`-A TSRUN-ISOLATION-1 -i ${n.bridge} ! -o ${n.bridge} -j TSRUN-ISOLATION-2`);
    filter.push(`-A TSRUN-ISOLATION-2 -o ${n.bridge} -j DROP`);
    // replies, and new connections a published port (a DNAT rule of TSRUN) sends in
    filter.push(`-A TSRUN-FORWARD -o ${n.bridge} -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT`);
    if (n.internal) filter.push(`-A TSRUN-FORWARD -i ${n.bridge} -o ${n.bridge} -j ACCEPT`);
    else filter.push(`-A TSRUN-FORWARD -i ${n.bridge} -j ACCEPT`);
  }
  return { nat, filter };
}

/** The DNAT rules of the published ports: the one chain rewritten when containers start and stop. */
export function portRules(networks: NetworkRecord[], atts: Attachment[]): string[] {
  const ids = new Set(networks.map((n) => n.id));
  const out: string[] = [];
  for (const a of atts) {
    const ep = a.endpoints[0];
    if (!ep || !ids.has(ep.networkId)) continue;
    for (const p of a.ports) {
      const dst = p.hostIp && p.hostIp !== '0.0.0.0' ? ` -d ${p.hostIp}/32` : '';
      out.push(`-A TSRUN${dst} -p ${p.proto} -m ${p.proto} --dport ${p.hostPort} -j DNAT --to-destination ${ep.ip}:${p.containerPort}`);
    }
  }
  return out;
}

function save(): string {
  const saved = spawnSync(bin('save'), [], { encoding: 'utf8' });
  trace('net: iptables-save');
  if (saved.error || saved.status !== 0) {
    throw new TsrunError(`iptables: ${bin('save')}: ${saved.error?.message ?? saved.stderr.trim()}`, 125);
  }
  return saved.stdout;
}

function restore(lines: string[]): void {
  const r = spawnSync(bin('restore'), ['--noflush'], { input: lines.join('\n') + '\n', encoding: 'utf8' });
  trace('net: iptables-restore');
  if (r.error || r.status !== 0) {
    throw new TsrunError(`iptables: ${bin('restore')} --noflush: ${r.error?.message ?? r.stderr.trim().split('\n').join('; ')}`, 125);
  }
}

function tableLines(saved: string, table: string): string[] {
  const m = new RegExp(`^\\*${table}\\n([\\s\\S]*?)^COMMIT`, 'm').exec(saved);
  return m ? m[1].split('\n') : [];
}

/**
 * Only the published ports changed: rewrite chain TSRUN alone (one small restore; iptables-nft
 * spends ~10 ms per restore that touches MASQUERADE, addrtype or conntrack rules). The callers know
 * the rest is in place: they read the marker that applyAll writes, or rules only go away.
 */
export function applyPorts(networks: NetworkRecord[], atts: Attachment[]): void {
  restore(['*nat', ':TSRUN - [0:0]', ...portRules(networks, atts), 'COMMIT']);
}

const OWNER = /^-A TSRUN-POSTROUTING -m comment --comment "?tsrun-root=([^"]*)"?$/m;

/** The root whose rules this namespace's chains hold (undefined: none, or a root without networks left). */
function liveOwner(saved: string): string | undefined {
  const owner = OWNER.exec(tableLines(saved, 'nat').join('\n'))?.[1];
  return owner && fs.existsSync(owner) && listNetworks(owner).length ? owner : undefined;
}

/** Write all of tsrun's chains from `root`'s state; with no network left, remove the chains and their jumps. */
export function applyFirewall(root: string, networks: NetworkRecord[], atts: Attachment[]): void {
  const saved = save();
  const owner = liveOwner(saved);
  if (owner && path.resolve(owner) !== path.resolve(root)) {
    throw new TsrunError(`network: the TSRUN iptables chains of this network namespace hold the rules of the tsrun root ${owner}, and writing ${path.resolve(root)}'s would drop them: use --root ${owner}, --network none, or another network namespace`, 125);
  }
  const { nat, filter } = networkRules(networks);
  nat.unshift(...portRules(networks, atts));
  nat.unshift(`-A TSRUN-POSTROUTING -m comment --comment "tsrun-root=${path.resolve(root).replace(/"/g, '?')}"`);
  const empty = networks.length === 0;
  const out: string[] = [];
  const table = (name: 'nat' | 'filter', chains: string[], rules: string[]) => {
    const lines = tableLines(saved, name);
    const exists = (c: string) => lines.some((l) => l.startsWith(`:${c} `));
    if (empty && !chains.some(exists)) return;
    out.push(`*${name}`, ...chains.map((c) => `:${c} - [0:0]`));
    const jumps = JUMPS[name];
    const present = jumps.filter((j) => lines.includes(j));
    if (empty) {
      for (const j of present) out.push(j.replace(/^-A/, '-D'));
      for (const c of chains) out.push(`-X ${c}`);
    } else if (name === 'filter') {
      // isolation before the accepts, both ahead of whatever else FORWARD holds
      const fwd = lines.filter((l) => l.startsWith('-A FORWARD '));
      if (fwd[0] !== jumps[0] || fwd[1] !== jumps[1]) {
        for (const j of present) out.push(j.replace(/^-A/, '-D'));
        out.push(jumps[1].replace(/^-A FORWARD/, '-I FORWARD 1'), jumps[0].replace(/^-A FORWARD/, '-I FORWARD 1'));
      }
      out.push(...rules);
    } else {
      for (const j of jumps) if (!present.includes(j)) out.push(j);
      out.push(...rules);
    }
    out.push('COMMIT');
  };
  table('nat', ['TSRUN', 'TSRUN-POSTROUTING'], nat);
  table('filter', ['TSRUN-ISOLATION-1', 'TSRUN-ISOLATION-2', 'TSRUN-FORWARD'], filter);
  if (out.length) restore(out);
}
