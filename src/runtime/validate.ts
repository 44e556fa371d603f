// config.json at the edge: parse, check, and return a typed Spec, or a one-line error.
import fs = require('fs');
import path = require('path');
import type { Spec } from './spec';
import { TsrunError } from './errors';
import { NS_FLAGS, RLIMITS } from './plan';
import { capNumber } from './caps';

function bad(msg: string): never {
  throw new TsrunError(`invalid config.json: ${msg}`);
}

export function loadSpec(bundle: string): { spec: Spec; rootfs: string } {
  const file = path.join(bundle, 'config.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new TsrunError(code === 'ENOENT' ? `bundle ${bundle}: config.json not found` : `read ${file}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new TsrunError(`invalid config.json: ${(e as Error).message.split('\n')[0]}`);
  }
  const spec = validateSpec(raw);
  const rootfs = path.resolve(bundle, spec.root!.path);
  let st: fs.Stats;
  try {
    st = fs.statSync(rootfs);
  } catch {
    throw new TsrunError(`rootfs ${rootfs} does not exist`);
  }
  if (!st.isDirectory()) throw new TsrunError(`rootfs ${rootfs} is not a directory`);
  return { spec, rootfs };
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isStrArr = (x: unknown) => Array.isArray(x) && x.every((s) => typeof s === 'string');
const isInt = (x: unknown) => typeof x === 'number' && Number.isInteger(x);

export function validateSpec(raw: unknown): Spec {
  if (!isObj(raw)) bad('not a JSON object');
  if (typeof raw.ociVersion !== 'string') bad('ociVersion must be a string');
  if (!isObj(raw.root) || typeof raw.root.path !== 'string' || !raw.root.path) bad('root.path is required');
  const p = raw.process;
  if (!isObj(p)) bad('process is required');
  if (!isStrArr(p.args) || (p.args as string[]).length === 0) bad('process.args must be a non-empty array of strings');
  if (typeof p.cwd !== 'string' || !path.isAbsolute(p.cwd)) bad('process.cwd must be an absolute path');
  if (!isObj(p.user) || !isInt(p.user.uid) || !isInt(p.user.gid)) bad('process.user.uid and gid must be integers');
  if (p.env !== undefined && !isStrArr(p.env)) bad('process.env must be an array of strings');
  if (p.user.additionalGids !== undefined && !(Array.isArray(p.user.additionalGids) && p.user.additionalGids.every(isInt))) bad('process.user.additionalGids must be integers');
  if (isObj(p.capabilities)) {
    for (const set of ['bounding', 'effective', 'inheritable', 'permitted', 'ambient']) {
      const v = p.capabilities[set];
      if (v === undefined) continue;
      if (!isStrArr(v)) bad(`process.capabilities.${set} must be an array of strings`);
      for (const c of v as string[]) {
        try { capNumber(c); } catch { bad(`process.capabilities.${set}: unknown capability "${c}"`); }
      }
    }
  }
  for (const r of (p.rlimits as unknown[] | undefined) ?? []) {
    if (!isObj(r) || typeof r.type !== 'string' || RLIMITS[r.type] === undefined) bad(`process.rlimits: unknown type ${isObj(r) ? JSON.stringify(r.type) : ''}`);
    if (typeof r.soft !== 'number' || typeof r.hard !== 'number') bad(`process.rlimits ${r.type}: soft and hard must be numbers`);
  }
  for (const m of (raw.mounts as unknown[] | undefined) ?? []) {
    if (!isObj(m) || typeof m.destination !== 'string' || !path.isAbsolute(m.destination)) bad(`mounts: destination ${isObj(m) ? JSON.stringify(m.destination) : ''} must be an absolute path`);
    if (m.options !== undefined && !isStrArr(m.options)) bad(`mounts ${m.destination}: options must be strings`);
  }
  const linux = raw.linux;
  if (linux !== undefined) {
    if (!isObj(linux)) bad('linux must be an object');
    const seen = new Set<string>();
    for (const n of (linux.namespaces as unknown[] | undefined) ?? []) {
      if (!isObj(n) || typeof n.type !== 'string') bad('linux.namespaces: each entry needs a type');
      if (NS_FLAGS[n.type] === undefined) bad(`linux.namespaces: unknown namespace type "${n.type}"`);
      if (seen.has(n.type)) bad(`linux.namespaces: duplicate namespace "${n.type}"`);
      seen.add(n.type);
      if (n.path !== undefined && (typeof n.path !== 'string' || !path.isAbsolute(n.path))) bad(`linux.namespaces ${n.type}: path must be absolute`);
      if (typeof n.path === 'string' && !fs.existsSync(n.path)) bad(`linux.namespaces ${n.type}: ${n.path} does not exist`);
    }
    if (seen.has('user') && !(linux.namespaces as { type: string; path?: string }[]).find((n) => n.type === 'user')?.path) {
      if (!Array.isArray(linux.uidMappings) || !Array.isArray(linux.gidMappings) || !linux.uidMappings.length) bad('a new user namespace needs linux.uidMappings and linux.gidMappings');
    }
    for (const k of ['maskedPaths', 'readonlyPaths']) {
      if (linux[k] !== undefined && !isStrArr(linux[k])) bad(`linux.${k} must be an array of strings`);
    }
    if (linux.cgroupsPath !== undefined && typeof linux.cgroupsPath !== 'string') bad('linux.cgroupsPath must be a string');
    if (linux.rootfsPropagation !== undefined && !['private', 'rprivate', 'slave', 'rslave', 'shared', 'rshared', 'unbindable', 'runbindable'].includes(linux.rootfsPropagation as string)) {
      bad(`linux.rootfsPropagation: unknown value "${linux.rootfsPropagation}"`);
    }
  }
  if (raw.hooks !== undefined) {
    if (!isObj(raw.hooks)) bad('hooks must be an object');
    for (const [kind, list] of Object.entries(raw.hooks)) {
      if (!['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'].includes(kind)) bad(`hooks: unknown hook kind "${kind}"`);
      if (!Array.isArray(list)) bad(`hooks.${kind} must be an array`);
      for (const h of list) if (!isObj(h) || typeof h.path !== 'string' || !path.isAbsolute(h.path)) bad(`hooks.${kind}: each hook needs an absolute path`);
    }
  }
  return raw as unknown as Spec;
}

/** `update --resources`: the JSON must be an object of the known resource groups. */
export function validateResources(r: unknown): void {
  if (!isObj(r)) throw new TsrunError('update: resources must be a JSON object');
  for (const k of Object.keys(r)) {
    if (!['devices', 'memory', 'cpu', 'pids', 'blockIO', 'hugepageLimits', 'unified', 'network', 'rdma'].includes(k)) throw new TsrunError(`update: unknown resource "${k}"`);
  }
}
