// Cgroup layout detection from /proc/self/mountinfo (one file read, no caching).
//
// Node has no statfs(2) magic check, so the mode is derived from the mount table:
//   - cgroup2 mounted on /sys/fs/cgroup                      -> 'unified'
//   - cgroup2 mounted on /sys/fs/cgroup/unified (the systemd
//     "hybrid" layout, normally with a tmpfs on /sys/fs/cgroup) -> 'hybrid'
//   - anything else                                          -> 'legacy'
// When several mounts share a mount point, the last one in mountinfo (the
// topmost) wins, like the kernel's path lookup.

import fs = require('fs');

export type CgroupMode = 'unified' | 'hybrid' | 'legacy';

export const CGROUP_ROOT = '/sys/fs/cgroup';

export interface CgroupMounts {
  mode: CgroupMode;
  /** Mount point of the cgroup2 hierarchy used by tsrun (unified: /sys/fs/cgroup, hybrid: /sys/fs/cgroup/unified). */
  unified?: string;
  /** v1 controller -> mount point. Co-mounted controllers (cpu,cpuacct) map to the same directory. */
  v1: Record<string, string>;
  /** Named v1 hierarchies without controllers (e.g. "name=systemd") -> mount point. Informational. */
  named: Record<string, string>;
}

interface MountEntry { mountPoint: string; fsType: string; superOptions: string[] }

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

function parseMountinfoLines(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    // id parent maj:min root mountpoint options [optional fields...] - fstype source superoptions
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    if (left.length < 5 || right.length < 1) continue;
    out.push({
      mountPoint: unescapeMount(left[4]),
      fsType: right[0],
      superOptions: (right[2] ?? '').split(','),
    });
  }
  return out;
}

/** Parse mountinfo text (exported for tests). */
export function parseCgroupMounts(mountinfo: string): CgroupMounts {
  const entries = parseMountinfoLines(mountinfo);
  // Topmost mount per mount point.
  const byPoint = new Map<string, MountEntry>();
  for (const e of entries) byPoint.set(e.mountPoint, e);

  const rootFs = byPoint.get(CGROUP_ROOT)?.fsType;
  const unifiedFs = byPoint.get(CGROUP_ROOT + '/unified')?.fsType;

  let mode: CgroupMode;
  let unified: string | undefined;
  if (rootFs === 'cgroup2') {
    mode = 'unified';
    unified = CGROUP_ROOT;
  } else if (unifiedFs === 'cgroup2') {
    mode = 'hybrid';
    unified = CGROUP_ROOT + '/unified';
  } else {
    mode = 'legacy';
  }

  const v1: Record<string, string> = {};
  const named: Record<string, string> = {};
  if (mode !== 'unified') {
    // Prefer mounts under /sys/fs/cgroup; otherwise the first one seen.
    const score = (p: string) => (p.startsWith(CGROUP_ROOT + '/') ? 1 : 0);
    for (const e of byPoint.values()) {
      if (e.fsType !== 'cgroup') continue;
      for (const opt of e.superOptions) {
        if (!opt || opt === 'rw' || opt === 'ro' || opt === 'noprefix' || opt === 'clone_children' ||
            opt === 'xattr' || opt === 'none' || opt === 'cpuset_v2_mode' || opt === 'favordynmods' ||
            opt.startsWith('release_agent=')) continue;
        if (opt.startsWith('name=')) {
          const n = opt;
          if (!(n in named) || score(e.mountPoint) > score(named[n])) named[n] = e.mountPoint;
          continue;
        }
        if (!(opt in v1) || score(e.mountPoint) > score(v1[opt])) v1[opt] = e.mountPoint;
      }
    }
  }
  return { mode, unified, v1, named };
}

let cached: CgroupMounts | undefined;

/** Read /proc/self/mountinfo once per process and describe the cgroup layout. */
export function readCgroupMounts(): CgroupMounts {
  return (cached ??= readCgroupMountsNow());
}

function readCgroupMountsNow(): CgroupMounts {
  let text: string;
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    text = fs.readFileSync('/proc/mounts', 'utf8');
    return parseProcMounts(text);
  }
  return parseCgroupMounts(text);
}

/** Fallback parser for /proc/mounts (device mountpoint fstype options ...). */
function parseProcMounts(text: string): CgroupMounts {
  // Convert to a mountinfo-like shape so one parser decides.
  const lines = text.split('\n').filter(Boolean).map((l, i) => {
    const [src, mp, type, opts] = l.split(' ');
    return `${i} 0 0:0 / ${mp} ${opts} - ${type} ${src} ${opts}`;
  });
  return parseCgroupMounts(lines.join('\n'));
}

export function detectCgroupMode(): CgroupMode {
  return readCgroupMounts().mode;
}

/** v1 controller -> mount point (empty on a pure cgroup v2 host). */
export function v1ControllerMounts(): Record<string, string> {
  return readCgroupMounts().v1;
}
