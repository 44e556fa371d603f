// `tsrun run IMAGE [CMD...]`: image → overlay snapshot → OCI bundle → the runtime's own run.
// The engine never bypasses the runtime: the container goes through the same plan as `tsrun run -b`.
import fs = require('fs');
import path = require('path');
import { TsrunError } from '../runtime/errors';
import { trace } from '../runtime/trace';
import { run as runtimeRun, del as runtimeDelete } from '../runtime/container';
import { ImageStore, mountSnapshot, removeSnapshot, unmountSnapshot } from '../image/store';
import type { ImageConfig, ImageRecord } from '../image/types';
import { buildContainer, type RunFlags } from './spec';
import { removeAnonymousVolumes } from './volumes';
import * as ct from './containers';
import { containerEvent } from './events';

export interface RunImageOptions extends RunFlags {
  root: string;
  image: string;
  name?: string;
  rm?: boolean;
  detach?: boolean;
  restart?: string;
  pull?: 'missing' | 'always' | 'never';
  detachKeys?: string;
  /** --health-*, --no-healthcheck (merged with the image's HEALTHCHECK) */
  healthFlags?: { cmd?: string; interval?: number; timeout?: number; startPeriod?: number; retries?: number; none?: boolean };
  /** --log-driver, --log-opt */
  log?: ct.ContainerRecord['log'];
  /** --cidfile: the new container's id is written there (refused when the file exists) */
  cidfile?: string;
  /** --network, -p, -P, --ip, --dns... (network/spec.ts) */
  net?: import('./network/spec').NetFlags;
}

/** Find an image by id, short id or reference; pull it when missing (as docker run does). */
export async function findOrPull(store: ImageStore, key: string, policy: RunImageOptions['pull'] = 'missing'): Promise<ImageRecord> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { parseRef, formatRef } = require('../image/ref') as typeof import('../image/ref');
  let found = policy === 'always' ? undefined : store.find(key);
  let normal: string | undefined;
  if (!found) {
    try {
      normal = formatRef(parseRef(key));
      if (policy !== 'always') found = store.find(normal);
    } catch (e) {
      if (!found) throw new TsrunError((e as Error).message, 125);
    }
  }
  if (found) return found;
  if (policy === 'never') throw new TsrunError(`No such image: ${key}`, 125);
  process.stderr.write(`Unable to find image '${key}' locally\n`);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { pullImage } = require('../image/pull') as typeof import('../image/pull');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { progressRenderer } = require('../image/registry/progress') as typeof import('../image/registry/progress');
  try {
    return await pullImage(store, parseRef(key), { progress: progressRenderer(process.stderr) });
  } catch (e) {
    throw new TsrunError((e as Error).message, 125);
  }
}

/** docker create: the record, the snapshot and the bundle; nothing runs yet. */
export async function createImageContainer(o: RunImageOptions): Promise<ct.ContainerRecord> {
  trace('engine: create');
  const store = new ImageStore(o.root);
  const img = await findOrPull(store, o.image, o.pull);
  const config = store.content.readJSON<ImageConfig>(img.id);
  trace('engine: image found');
  if (o.cidfile !== undefined && fs.existsSync(o.cidfile)) throw new TsrunError(`Container ID file found, make sure the other container isn't running or delete ${o.cidfile}`, 125);
  const taken = new Set(ct.listContainers(o.root).map((c) => c.name));
  if (o.name !== undefined && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(o.name)) {
    throw new TsrunError(`Invalid container name (${o.name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`, 125);
  }
  const rec: ct.ContainerRecord = {
    id: ct.newId(), name: o.name ?? ct.generateName(taken), image: o.image, imageId: img.id,
    chainId: img.layers.length ? img.layers[img.layers.length - 1].chainId : undefined,
    created: new Date().toISOString(), args: o.args ?? [], autoRemove: !!o.rm, tty: !!o.tty,
    restart: o.restart ?? 'no', detached: !!o.detach, openStdin: o.stdin !== 'null', ...(o.log ? { log: o.log } : {}),
  };
  for (let i = 0; ; i++) {
    try {
      ct.reserveContainer(o.root, rec);
      break;
    } catch (e) {
      // a generated name that a concurrent run took a moment ago: draw another one
      if (o.name !== undefined || i >= 20 || !/already in use/.test((e as Error).message)) throw e;
      taken.add(rec.name);
      rec.name = ct.generateName(taken);
    }
  }
  trace('engine: reserved');
  try {
    const rootfs = mountSnapshot(o.root, rec.id, store.layers, rec.chainId);
    trace('engine: snapshot mounted');
    const { spec, extras } = buildContainer(config, rootfs, rec.id, o);
    trace('engine: spec built');
    const net = networkFor(o, config, rec);
    if (net) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      (require('./network/spec') as typeof import('./network/spec')).applyNetworkToSpec(spec, o.root, rec.id, net, o.hostname !== undefined);
    }
    // a terminal starts with our window's size (docker's ConsoleSize); attach resizes it later
    if (o.tty && spec.process && process.stdout.isTTY) spec.process.consoleSize = { height: process.stdout.rows, width: process.stdout.columns };
    fs.writeFileSync(path.join(ct.containerPath(o.root, rec.id), 'config.json'), JSON.stringify(spec, null, 2));
    const args = (spec.process?.args ?? []).slice(o.init ? 2 : 0); // the command, without --init's tini
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const health = (require('./health') as typeof import('./health')).healthConfig(config.config?.Healthcheck, o.healthFlags ?? {});
    const full: ct.ContainerRecord = { ...rec, args, ...extras, ...(net ? { net } : {}), ...(health ? { health } : {}) };
    ct.saveContainer(o.root, full);
    if (o.cidfile !== undefined) {
      try {
        fs.writeFileSync(o.cidfile, rec.id, { flag: 'wx' });
      } catch (e) {
        throw new TsrunError(`failed to create the container ID file: ${(e as Error).message}`, 125);
      }
    }
    containerEvent(o.root, full, 'create');
    trace('engine: created');
    return full;
  } catch (e) {
    removeContainer(o.root, rec, { volumes: true });
    const err = e as TsrunError;
    throw new TsrunError(err.message, err.exitCode === 126 || err.exitCode === 127 ? err.exitCode : 125);
  }
}

export async function runImage(o: RunImageOptions): Promise<number> {
  const rec = await createImageContainer(o);
  const dir = ct.containerPath(o.root, rec.id);
  let code: number;
  try {
    if (o.detach) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { startDetached } = require('./lifecycle') as typeof import('./lifecycle');
      await startDetached(o.root, rec, { restart: o.restart, rm: o.rm, tty: o.tty });
      process.stdout.write(rec.id + '\n');
      return 0;
    }
    const it = !!o.tty && o.stdin !== 'null' && !!process.stdin.isTTY;
    if (it || (o.restart && o.restart !== 'no')) {
      // docker's run -it (ctrl-p ctrl-q detaches), or a restart policy to apply after we return:
      // under the supervisor, attached
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      return await (require('./attach') as typeof import('./attach')).runAttached(o.root, rec, { ...o, tty: !!o.tty, stdin: o.stdin !== 'null' });
    }
    ct.saveContainer(o.root, { ...rec, startedAt: new Date().toISOString() });
    containerEvent(o.root, rec, 'start');
    // a container that stays (no --rm) keeps its output in its log, as a detached one does; a
    // terminal (-t without one on our stdin) is passed through as it is
    attachNetwork(o.root, rec); // (a failure from here on: the catch below removes the container, network and all)
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const tee = !o.rm && !o.tty && rec.log?.driver !== 'none' ? (require('./outlog') as typeof import('./outlog')).teeOutput(ct.logPath(o.root, rec.id), rec.log) : undefined;
    const probes = rec.health ? healthProbes(o.root, rec) : undefined;
    try {
      code = await runtimeRun({ root: o.root, id: rec.id, bundle: dir, stdinNull: o.stdin === 'null', ...(tee ? { stdio: tee.fds } : {}) });
    } finally {
      probes?.stop();
      await tee?.finish();
      detachNetwork(o.root, rec.id);
    }
    containerEvent(o.root, rec, 'die', { exitCode: String(code) });
  } catch (e) {
    removeContainer(o.root, rec, { volumes: true });
    const err = e as TsrunError;
    // Docker's codes: 125 the engine failed, 126 cannot invoke, 127 not found
    throw new TsrunError(err.message, err.exitCode === 126 || err.exitCode === 127 ? err.exitCode : 125);
  }
  if (o.rm) removeContainer(o.root, rec);
  else {
    unmountSnapshot(o.root, rec.id);
    ct.saveContainer(o.root, { ...ct.findContainer(o.root, rec.id), exitCode: code, finishedAt: new Date().toISOString() });
  }
  return code;
}

/** A foreground container's health checks (a detached one's come from its supervisor): one probe per interval, one at a time. */
function healthProbes(root: string, rec: ct.ContainerRecord): { stop: () => void } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { probe } = require('./health') as typeof import('./health');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { tsrunBin } = require('./lifecycle') as typeof import('./lifecycle');
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const next = () => {
    timer = setTimeout(() => {
      probe(root, rec.id, tsrunBin()).catch(() => undefined).finally(() => { if (!stopped) next(); });
    }, rec.health!.interval);
    timer.unref();
  };
  next();
  return { stop: () => { stopped = true; clearTimeout(timer); } };
}

/** Remove a container: its supervisor, its runtime state (killing it), its snapshot and its record. */
export function removeContainer(root: string, rec: ct.ContainerRecord, opts: { volumes?: boolean } = {}): void {
  const dir = ct.containerPath(root, rec.id);
  try { fs.writeFileSync(path.join(dir, 'stopped'), ''); } catch { /* gone */ }
  // the supervisor would record the exit and maybe restart: the container is going away, so it goes first
  let sup = 0;
  try { sup = Number(fs.readFileSync(path.join(dir, 'supervisor.pid'), 'utf8')); } catch { /* none */ }
  if (sup > 0 && isSupervisor(sup, rec.id)) { try { process.kill(sup, 'SIGKILL'); } catch { /* gone */ } }
  try { runtimeDelete(root, rec.id, true); } catch { /* not created in the runtime */ }
  try { detachNetwork(root, rec.id); } catch (e) { process.stderr.write(`tsrun: warning: container ${rec.id.slice(0, 12)}: ${(e as Error).message}\n`); }
  removeSnapshot(root, rec.id);
  if (opts.volumes || rec.autoRemove) removeAnonymousVolumes(root, rec);
  ct.releaseContainer(root, rec);
  containerEvent(root, rec, 'destroy');
}

/** Is pid still the supervisor of this container (and not a reused pid)? */
function isSupervisor(pid: number, id: string): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(id);
  } catch {
    return false;
  }
}

// ---- the network (engine/network): loaded only for containers that have one

/** The container's NetConfig from the flags (undefined: no network flags and the default is none). */
function networkFor(o: RunImageOptions, config: ImageConfig, rec: ct.ContainerRecord): ct.ContainerRecord['net'] {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { defaultNetworkMode } = require('./network/config') as typeof import('./network/config');
  const f = o.net ?? {};
  if ((f.network ?? defaultNetworkMode()) === 'none' && !Object.values(f).some((v) => Array.isArray(v) ? v.length : v)) return undefined;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { netConfigFor } = require('./network/spec') as typeof import('./network/spec');
  return netConfigFor(o.root, f, config.config?.ExposedPorts, (key) => {
    const t = ct.findContainer(o.root, key);
    if (t.id === rec.id) throw new TsrunError('cannot join own network', 125);
    return t;
  });
}

/** Before the runtime runs the container: its namespace, addresses, ports, rules, /etc files. */
export function attachNetwork(root: string, rec: ct.ContainerRecord): boolean {
  if (!rec.net || rec.net.mode === 'none') return false;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const net = require('./network') as typeof import('./network');
  let hostname = rec.id.slice(0, 12);
  try { hostname = JSON.parse(fs.readFileSync(path.join(ct.containerPath(root, rec.id), 'config.json'), 'utf8')).hostname ?? hostname; } catch { /* default */ }
  trace('network: attach');
  const made = net.attach(root, { id: rec.id, name: rec.name, net: rec.net, hostname });
  trace('network: attached');
  return made;
}

/** After it stopped for good: veths, namespace, addresses, rules go. */
export function detachNetwork(root: string, id: string): void {
  const dir = path.join(root, 'networks');
  if (!fs.existsSync(dir)) return;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  trace('network: detach');
  (require('./network') as typeof import('./network')).detach(root, id);
  trace('network: detached');
}
