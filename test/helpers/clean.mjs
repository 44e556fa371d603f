// assertClean: after a container is gone, nothing of it may remain on the host.
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_CGROUP_PREFIX } from './runtime.mjs';
import { mountsUnder } from './bundle.mjs';

/** Cgroup hierarchies mounted on the host: [{ mnt, version, controllers: string[] }]. */
export function cgroupMounts() {
  const res = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (!line) continue;
    const f = line.split(' ');
    const sep = f.indexOf('-');
    const fstype = f[sep + 1];
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    const opts = (f[sep + 3] ?? '').split(',');
    const known = new Set(['rw', 'ro', 'nosuid', 'nodev', 'noexec', 'relatime', 'nsdelegate', 'memory_recursiveprot', 'clone_children', 'xattr']);
    res.push({ mnt: f[4], version: fstype === 'cgroup2' ? 2 : 1, controllers: opts.filter(o => !known.has(o) && !o.includes('release_agent')) });
  }
  return res;
}

/** Parses /proc/PID/cgroup into [{ controllers: string[], path }]. */
export function procCgroups(pid = 'self') {
  return readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').filter(Boolean).map(l => {
    const [, ctrls, ...rest] = l.split(':');
    return { controllers: ctrls ? ctrls.split(',') : [], path: rest.join(':') };
  });
}

/** Host directory of a process's cgroup for one controller ('pids', 'memory', … or '' for cgroup2). */
export function cgroupDirOf(pid, controller) {
  const entry = procCgroups(pid).find(e => controller === '' ? e.controllers.length === 0 : e.controllers.includes(controller));
  if (!entry) throw new Error(`process ${pid} has no ${controller || 'cgroup2'} cgroup`);
  const m = cgroupMounts().find(x => controller === '' ? x.version === 2 : x.controllers.includes(controller));
  if (!m) throw new Error(`no ${controller || 'cgroup2'} hierarchy mounted`);
  return join(m.mnt, entry.path);
}

/** Where a container named `id` would have its cgroup dirs under `prefix` ('relative' = runc's default). */
export function expectedCgroupDirs(id, prefix = DEFAULT_CGROUP_PREFIX) {
  const own = procCgroups('self');
  return cgroupMounts().map(m => {
    let base = prefix;
    if (prefix === 'relative') {
      const e = m.version === 2 ? own.find(o => o.controllers.length === 0)
        : own.find(o => o.controllers.length && o.controllers.every(c => m.controllers.includes(c)));
      base = e?.path ?? '/';
    }
    return join(m.mnt, base, id);
  });
}

function findNamed(dir, name, depth, out) {
  if (depth < 0) return;
  let entries;
  try { entries = readdirSync(dir, { withFileTypes: true }); } catch { return; }
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    const p = join(dir, e.name);
    if (e.name === name) out.push(p);
    findNamed(p, name, depth - 1, out);
  }
}

function findContaining(dir, needle, depth, out) {
  if (depth < 0) return;
  let entries;
  try { entries = readdirSync(dir, { withFileTypes: true }); } catch { return; }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.name.includes(needle)) out.push(p);
    if (e.isDirectory() && !e.isSymbolicLink()) findContaining(p, needle, depth - 1, out);
  }
}

/**
 * Everything left of container `id`, as a list of human-readable problems (empty = clean):
 *   - entries under `root` whose name contains the id;
 *   - mounts at or below `bundle` in the host's /proc/self/mountinfo;
 *   - cgroup dirs <hierarchy>/<cgroupPrefix>/<id> (and any cgroup dir named id, depth ≤ 8);
 *   - processes whose /proc/PID/cgroup has a path component equal to the id, or whose
 *     command line mentions the id (a leftover monitor/shim).
 */
export function findLeftovers({ root, id, bundle, cgroupPrefix = DEFAULT_CGROUP_PREFIX }) {
  if (!id) throw new Error('findLeftovers: id is required');
  const problems = [];
  if (root && existsSync(root)) {
    const hits = [];
    findContaining(root, id, 4, hits);
    for (const h of hits) problems.push(`state left under --root: ${h}`);
  }
  if (bundle) {
    let b = bundle;
    try { b = realpathSync(bundle); } catch { /* removed */ }
    for (const m of new Set([...mountsUnder(bundle), ...mountsUnder(b)])) problems.push(`mount left under bundle: ${m}`);
  }
  const cg = new Set();
  for (const d of expectedCgroupDirs(id, cgroupPrefix)) if (existsSync(d)) cg.add(d);
  for (const m of cgroupMounts()) {
    const hits = [];
    findNamed(m.mnt, id, 8, hits);
    for (const h of hits) cg.add(h);
  }
  for (const d of cg) problems.push(`cgroup left: ${d}`);
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n');
      if (lines.some(l => l.split(':').slice(2).join(':').split('/').includes(id))) {
        problems.push(`process ${pid} still in a cgroup of ${id}: ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim()}`);
        continue;
      }
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.split(/[\s/=]/).includes(id)) problems.push(`process ${pid} mentions ${id}: ${cmd.trim()}`);
    } catch { /* exited */ }
  }
  return problems;
}

/** Fails the test (t.deepEqual against []) if anything of container `id` remains. */
export function assertClean(t, opts) {
  const problems = findLeftovers(opts);
  t.deepEqual(problems, [], `container ${opts.id} left things behind:\n${problems.join('\n')}`);
}
