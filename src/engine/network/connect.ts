// `network connect` / `disconnect`: recorded in the container's NetConfig; a running container
// gets (or loses) an ethN at once.
import { TsrunError } from '../../runtime/errors';
import * as st from './store';
import { intToIp, parseCidr, macFor } from './addr';
import { ipBatch, ipBatchQuiet, configureInside } from './exec';
import { locked, applyAll, rulesCurrent, portsGone, ensureBridge, resolveNetwork, defaultNetworkLocked } from './networks';
import { allocate, vethName } from './ipam';
import { ensureResolver } from './resolver';
import { networkEvent } from '../events';
import { writeFiles } from './files';
import { isBridgeLike, type NetConfig } from './config';

/** `network connect`: recorded for the next starts; a running container gets ethN at once. */
export function connect(root: string, c: { id: string; name: string; net?: NetConfig; hostname: string }, key: string, o: { aliases?: string[]; ip?: string }): NetConfig {
  const net: NetConfig = c.net ?? { mode: 'none' };
  if (!isBridgeLike(net.mode)) throw new TsrunError('container sharing network namespace with another container or host cannot be connected to any other network', 1);
  return locked(root, () => {
    const n = resolveNetwork(root, key);
    const same = (k: string) => k === n.name || k === n.id || (k === 'bridge' && n.isDefault);
    if (same(net.mode) || (net.extra ?? []).some((e) => same(e.network))) throw new TsrunError(`endpoint with name ${c.name} already exists in network ${n.name}`, 1);
    const next: NetConfig = { ...net, extra: [...(net.extra ?? []), { network: n.name, ...(o.aliases?.length ? { aliases: o.aliases } : {}), ...(o.ip ? { ip: o.ip } : {}) }] };
    const a = st.readAttachment(root, c.id);
    if (a && st.ownerAlive(a)) {
      const bridgeMade = ensureBridge(n);
      const ip = allocate(root, st.listAttachments(root), n, o.ip);
      const used = new Set(a.endpoints.map((e) => e.ifname));
      let k = 0;
      while (used.has(`eth${k}`)) k++;
      const e: st.Endpoint = {
        networkId: n.id, networkName: n.name, bridge: n.bridge, ip: intToIp(ip), prefix: parseCidr(n.subnet).bits, gateway: n.gateway,
        mac: macFor(ip), veth: vethName(), ifname: `eth${k}`, aliases: n.dns ? [...new Set([c.name, c.id.slice(0, 12), ...(o.aliases ?? [])])] : [],
        ...(n.mtu ? { mtu: n.mtu } : {}),
      };
      const mtu = e.mtu ? ` mtu ${e.mtu}` : '';
      ipBatch([`link add ${e.veth}${mtu} master ${n.bridge} up type veth peer name ${e.ifname} address ${e.mac}${mtu} netns ${a.netns}`], { what: `connect ${c.name} to ${n.name}` });
      try {
        configureInside(a.netns, e, `connect ${c.name} to ${n.name}`);
      } catch (err) {
        ipBatchQuiet([`link del ${e.veth}`]);
        throw err;
      }
      const updated = { ...a, endpoints: [...a.endpoints, e] };
      st.saveAttachment(root, updated);
      if (bridgeMade || !rulesCurrent(root)) applyAll(root);
      if (n.dns) ensureResolver(root, n);
      writeFiles(root, c, next, updated);
      networkEvent(root, n, 'connect', c.id);
    }
    return next;
  });
}

export function disconnect(root: string, c: { id: string; name: string; net?: NetConfig; hostname: string }, key: string): NetConfig {
  const net: NetConfig = c.net ?? { mode: 'none' };
  return locked(root, () => {
    const n = st.findNetwork(root, key) ?? (key === 'bridge' ? defaultNetworkLocked(root) : undefined);
    if (!n) throw new TsrunError(`network ${key} not found`, 1);
    const same = (k: string) => k === n.name || k === n.id || (k === 'bridge' && !!n.isDefault);
    const extra = (net.extra ?? []).filter((e) => !same(e.network));
    const primary = same(net.mode);
    if (!primary && extra.length === (net.extra ?? []).length) throw new TsrunError(`container ${c.id.slice(0, 12)} is not connected to network ${n.name}`, 1);
    let next: NetConfig;
    if (primary) {
      // the next network becomes the primary one; without any, the container has only lo
      const [first, ...rest] = extra;
      next = first ? { ...net, mode: first.network, aliases: first.aliases, ip: first.ip, extra: rest } : { ...net, mode: 'none', extra: [], ports: undefined };
    } else next = { ...net, extra };
    const a = st.readAttachment(root, c.id);
    const e = a?.endpoints.find((x) => x.networkId === n.id);
    if (a && e) {
      ipBatchQuiet([`link del ${e.veth}`]);
      const updated = { ...a, endpoints: a.endpoints.filter((x) => x !== e) };
      st.saveAttachment(root, updated);
      if (a.ports.length) portsGone(root);
      writeFiles(root, c, next, updated);
      networkEvent(root, n, 'disconnect', c.id);
    }
    return next;
  });
}

