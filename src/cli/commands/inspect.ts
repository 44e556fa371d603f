import { parse, str, type Globals } from '../args';
import { openStore, resolveImage, inspectImage } from '../../image/ops';
import { TsrunError } from '../../runtime/errors';
import { renderTemplate } from '../template';
import { findContainer, containerPath, logPath, type ContainerRecord } from '../../engine/containers';
import { containerState } from '../../engine/lifecycle';
import { INIT_PATH } from '../../engine/spec';
import { volumeMountpoint } from '../../engine/volumes';
import fs = require('fs');
import path = require('path');

function findContainerOrNull(root: string, key: string): ContainerRecord | undefined {
  try { return findContainer(root, key); } catch { return undefined; }
}

/** docker container inspect's shape (the fields tools read). */
function inspectContainer(root: string, c: ContainerRecord): Record<string, unknown> {
  const s = containerState(root, c);
  let spec: Spec = {};
  try { spec = JSON.parse(fs.readFileSync(path.join(containerPath(root, c.id), 'config.json'), 'utf8')) as Spec; } catch { /* removed */ }
  const res = spec.linux?.resources;
  const init = spec.process?.args?.[0] === INIT_PATH;
  const mounts = mountsOf(root, c, spec);
  const zero = '0001-01-01T00:00:00Z';
  return {
    Id: c.id, Created: c.created, Path: spec.process?.args?.[0] ?? '', Args: spec.process?.args?.slice(1) ?? [],
    State: {
      Status: s.status, Running: s.status === 'running' || s.status === 'paused', Paused: s.status === 'paused', Restarting: s.status === 'restarting',
      OOMKilled: !!s.exit?.oomKilled, Dead: false, Pid: s.pid, ExitCode: s.exit?.exitCode ?? 0, Error: '',
      StartedAt: c.startedAt ?? zero, FinishedAt: s.exit?.finishedAt ?? c.finishedAt ?? zero,
      ...(c.health ? { Health: healthState(root, c.id, s.health) } : {}),
    },
    Image: c.imageId, Name: '/' + c.name, RestartCount: s.exit?.restartCount ?? 0,
    LogPath: logPath(root, c.id),
    HostConfig: { AutoRemove: c.autoRemove, RestartPolicy: { Name: (c.restart ?? 'no').split(':')[0], MaximumRetryCount: Number((c.restart ?? '').split(':')[1] ?? 0) },
      NetworkMode: c.net?.mode ?? 'none', PortBindings: portBindings(c), Dns: c.net?.dns ?? [], ExtraHosts: c.net?.addHosts ?? null, Links: c.net?.links?.map((l) => `${l.name}:${l.alias}`) ?? null,
      Binds: mounts.filter((m) => m.Type !== 'tmpfs').map((m) => `${m.Type === 'volume' ? m.Name : m.Source}:${m.Destination}${m.RW ? '' : ':ro'}`),
      Tmpfs: Object.fromEntries(mounts.filter((m) => m.Type === 'tmpfs').map((m) => [m.Destination, ''])),
      Memory: res?.memory?.limit ?? 0, MemorySwap: res?.memory?.swap ?? 0, MemoryReservation: res?.memory?.reservation ?? 0,
      NanoCpus: res?.cpu?.quota && res.cpu.quota > 0 ? Math.round((res.cpu.quota / (res.cpu.period || 100000)) * 1e9) : 0,
      CpuShares: res?.cpu?.shares ?? 0, CpusetCpus: res?.cpu?.cpus ?? '', PidsLimit: res?.pids?.limit ?? null,
      ReadonlyRootfs: !!spec.root?.readonly, Init: init || null, CapAdd: null, CapDrop: null,
      ShmSize: shmSize(spec), Ulimits: spec.process?.rlimits?.map((l) => ({ Name: l.type.replace(/^RLIMIT_/, '').toLowerCase(), Soft: l.soft, Hard: l.hard })) ?? null,
      Sysctls: spec.linux?.sysctl ?? {}, OomScoreAdj: spec.process?.oomScoreAdj ?? 0,
      PidMode: hasNs(spec, 'pid') ? '' : 'host', IpcMode: hasNs(spec, 'ipc') ? 'private' : 'host', UTSMode: hasNs(spec, 'uts') ? '' : 'host',
      Privileged: !!res?.devices?.[0]?.allow,
      LogConfig: { Type: c.log?.driver ?? 'json-file', Config: { ...(c.log?.maxSize ? { 'max-size': String(c.log.maxSize) } : {}), ...(c.log?.maxFile ? { 'max-file': String(c.log.maxFile) } : {}) } },
      Devices: res?.devices?.[0]?.allow ? [] : (spec.linux?.devices ?? []).map((d) => ({ PathOnHost: '', PathInContainer: d.path, CgroupPermissions: res?.devices?.find((x) => x.allow && x.major === d.major && x.minor === d.minor)?.access ?? '' })) },
    Mounts: mounts,
    Config: { Hostname: spec.hostname ?? '', User: spec.process?.user ? `${spec.process.user.uid}:${spec.process.user.gid}` : '', Tty: !!spec.process?.terminal,
      OpenStdin: !!c.openStdin, StdinOnce: false, Env: spec.process?.env ?? [], Cmd: c.args.length ? c.args : null, Image: c.image,
      WorkingDir: spec.process?.cwd ?? '', Labels: c.labels ?? {},
      ...(c.health ? { Healthcheck: { Test: c.health.test, Interval: c.health.interval * 1e6, Timeout: c.health.timeout * 1e6, StartPeriod: c.health.startPeriod * 1e6, Retries: c.health.retries } } : {}), StopSignal: c.stopSignal ?? 'SIGTERM', ...(c.stopTimeout !== undefined ? { StopTimeout: c.stopTimeout } : {}) },
    NetworkSettings: networkSettings(root, c),
  };
}

/** State.Health: health.json (its status as of this run of the container), without our pid field. */
function healthState(root: string, id: string, status: string | undefined): { Status: string; FailingStreak: number; Log: unknown[] } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const h = (require('../../engine/health') as typeof import('../../engine/health')).readHealth(root, id);
  return { Status: status ?? h?.Status ?? 'starting', FailingStreak: h?.FailingStreak ?? 0, Log: h?.Log ?? [] };
}

function shmSize(spec: Spec): number {
  const m = spec.mounts?.find((x) => x.destination === '/dev/shm' && x.type === 'tmpfs');
  const v = m?.options?.find((o) => o.startsWith('size='))?.slice(5);
  return v && /^\d+$/.test(v) ? Number(v) : 67108864;
}

function hasNs(spec: Spec, type: string): boolean {
  return !!spec.linux?.namespaces?.some((n) => n.type === type && !n.path);
}

interface Spec {
  process?: { env?: string[]; cwd?: string; args?: string[]; user?: { uid: number; gid: number }; terminal?: boolean; rlimits?: { type: string; soft: number; hard: number }[]; oomScoreAdj?: number };
  hostname?: string;
  root?: { readonly?: boolean };
  mounts?: { destination: string; type?: string; source?: string; options?: string[] }[];
  linux?: { namespaces?: { type: string; path?: string }[]; sysctl?: Record<string, string>; devices?: { path: string; major?: number; minor?: number }[]; resources?: { devices?: { allow: boolean; major?: number; minor?: number; access?: string }[]; memory?: { limit?: number; swap?: number; reservation?: number }; cpu?: { quota?: number; period?: number; shares?: number; cpus?: string }; pids?: { limit?: number } } };
}

interface MountPoint { Type: 'bind' | 'volume' | 'tmpfs'; Name?: string; Source: string; Destination: string; Driver?: string; Mode: string; RW: boolean; Propagation: string }

/** docker's Mounts: the container's volumes, bind mounts and tmpfs mounts (not the engine's own /etc files and /sbin/docker-init). */
function mountsOf(root: string, c: ContainerRecord, spec: Spec): MountPoint[] {
  const own = new Set(['/etc/hosts', '/etc/hostname', '/etc/resolv.conf', INIT_PATH]);
  const vols = new Map((c.volumes ?? []).map((v) => [v.destination, v]));
  const out: MountPoint[] = [];
  for (const m of spec.mounts ?? []) {
    const opts = m.options ?? [];
    const rw = !opts.includes('ro');
    const v = vols.get(m.destination);
    if (v) {
      out.push({ Type: 'volume', Name: v.name, Source: volumeMountpoint(root, v.name), Destination: m.destination, Driver: 'local', Mode: rw ? 'z' : 'ro', RW: rw, Propagation: '' });
    } else if ((m.type === 'bind' || opts.includes('bind') || opts.includes('rbind')) && !own.has(m.destination)) {
      out.push({ Type: 'bind', Source: m.source ?? '', Destination: m.destination, Mode: rw ? '' : 'ro', RW: rw, Propagation: opts.find((o) => /^r?(private|shared|slave)$/.test(o)) ?? 'rprivate' });
    } else if (m.type === 'tmpfs' && m.source === 'tmpfs' && !['/dev', '/dev/shm'].includes(m.destination)) {
      out.push({ Type: 'tmpfs', Source: '', Destination: m.destination, Mode: '', RW: rw, Propagation: '' });
    }
  }
  return out;
}

function portBindings(c: ContainerRecord): Record<string, { HostIp: string; HostPort: string }[]> {
  const out: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of c.net?.ports ?? []) (out[`${p.containerPort}/${p.proto}`] ??= []).push({ HostIp: p.hostIp === '0.0.0.0' ? '' : p.hostIp, HostPort: p.hostPort ? String(p.hostPort) : '' });
  return out;
}

/** docker's NetworkSettings: the running container's addresses and published ports. */
function networkSettings(root: string, c: ContainerRecord): Record<string, unknown> {
  const empty = { Bridge: '', SandboxID: '', SandboxKey: '', Ports: {}, Gateway: '', IPAddress: '', IPPrefixLen: 0, MacAddress: '', Networks: {} as Record<string, unknown> };
  if (!c.net || c.net.mode === 'none') return { ...empty, Networks: { none: { NetworkID: '', IPAddress: '', Gateway: '', IPPrefixLen: 0, MacAddress: '', Aliases: null } } };
  if (c.net.mode === 'host') return { ...empty, Networks: { host: { NetworkID: '', IPAddress: '', Gateway: '', IPPrefixLen: 0, MacAddress: '', Aliases: null } } };
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const net = require('../../engine/network') as typeof import('../../engine/network');
  const a = net.attachmentOf(root, c.id);
  if (!a) return empty;
  const ports: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of a.ports) (ports[`${p.containerPort}/${p.proto}`] ??= []).push({ HostIp: p.hostIp, HostPort: String(p.hostPort) });
  const first = a.endpoints[0];
  const networks: Record<string, unknown> = {};
  for (const e of a.endpoints) {
    networks[e.networkName] = { Aliases: e.aliases.length ? e.aliases : null, NetworkID: e.networkId, MacAddress: e.mac, Gateway: e.gateway, IPAddress: e.ip, IPPrefixLen: e.prefix,
      DNSNames: e.aliases.length ? e.aliases : null };
  }
  return { Bridge: '', SandboxID: c.id, SandboxKey: a.netns, Ports: ports, Gateway: first?.gateway ?? '', IPAddress: first?.ip ?? '', IPPrefixLen: first?.prefix ?? 0,
    MacAddress: first?.mac ?? '', Networks: networks };
}

/** `tsrun inspect` (images for now; containers come with the engine) and `tsrun image inspect`. */
export function inspectImages(argv: string[], g: Globals): number {
  const p = parse(argv, { str: ['format', 'type'], alias: { f: 'format' } }, 'inspect');
  if (!p.args.length) throw new TsrunError('inspect: requires at least 1 argument');
  const store = openStore(g.root);
  const out: unknown[] = [];
  let code = 0;
  for (const key of p.args) {
    try {
      const type = str(p, 'type');
      const c = type === 'image' ? undefined : findContainerOrNull(g.root, key);
      if (c) { out.push(inspectContainer(g.root, c)); continue; }
      if (type === 'container') throw new TsrunError(`No such container: ${key}`);
      let img;
      try { img = resolveImage(store, key); } catch (e) {
        // neither a container nor an image: docker says "No such object" (with --type image: "No such image")
        if (type !== 'image' && /No such image/.test((e as Error).message)) throw new TsrunError(`No such object: ${key}`);
        throw e;
      }
      out.push(inspectImage(store, img));
    } catch (e) {
      process.stderr.write(`Error: ${(e as Error).message}\n`);
      code = 1;
    }
  }
  const format = str(p, 'format');
  if (format) {
    for (const o of out) process.stdout.write(renderTemplate(format, o) + '\n');
  } else {
    process.stdout.write(JSON.stringify(out, null, 4) + '\n');
  }
  return code;
}

export { renderTemplate };

export default inspectImages;
