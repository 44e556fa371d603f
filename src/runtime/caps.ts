// Linux capability names and numbers (linux/capability.h), as used by the OCI process.capabilities sets.

import fs = require('fs');

export const CAPS: Record<string, number> = {
  CAP_CHOWN: 0,
  CAP_DAC_OVERRIDE: 1,
  CAP_DAC_READ_SEARCH: 2,
  CAP_FOWNER: 3,
  CAP_FSETID: 4,
  CAP_KILL: 5,
  CAP_SETGID: 6,
  CAP_SETUID: 7,
  CAP_SETPCAP: 8,
  CAP_LINUX_IMMUTABLE: 9,
  CAP_NET_BIND_SERVICE: 10,
  CAP_NET_BROADCAST: 11,
  CAP_NET_ADMIN: 12,
  CAP_NET_RAW: 13,
  CAP_IPC_LOCK: 14,
  CAP_IPC_OWNER: 15,
  CAP_SYS_MODULE: 16,
  CAP_SYS_RAWIO: 17,
  CAP_SYS_CHROOT: 18,
  CAP_SYS_PTRACE: 19,
  CAP_SYS_PACCT: 20,
  CAP_SYS_ADMIN: 21,
  CAP_SYS_BOOT: 22,
  CAP_SYS_NICE: 23,
  CAP_SYS_RESOURCE: 24,
  CAP_SYS_TIME: 25,
  CAP_SYS_TTY_CONFIG: 26,
  CAP_MKNOD: 27,
  CAP_LEASE: 28,
  CAP_AUDIT_WRITE: 29,
  CAP_AUDIT_CONTROL: 30,
  CAP_SETFCAP: 31,
  CAP_MAC_OVERRIDE: 32,
  CAP_MAC_ADMIN: 33,
  CAP_SYSLOG: 34,
  CAP_WAKE_ALARM: 35,
  CAP_BLOCK_SUSPEND: 36,
  CAP_AUDIT_READ: 37,
  CAP_PERFMON: 38,
  CAP_BPF: 39,
  CAP_CHECKPOINT_RESTORE: 40,
};

const CAP_LAST_KNOWN = 40;

/** The number of a capability name ("CAP_SYS_ADMIN" → 21); exact names, as runc expects. */
export function capNumber(name: string): number {
  const n = Object.prototype.hasOwnProperty.call(CAPS, name) ? CAPS[name] : undefined;
  if (n === undefined) throw new Error(`unknown capability "${name}"`);
  return n;
}

let lastCapCache: number | undefined;

/** The highest capability the running kernel knows (/proc/sys/kernel/cap_last_cap; 40 if unreadable). */
export function lastCap(): number {
  if (lastCapCache !== undefined) return lastCapCache;
  let n = CAP_LAST_KNOWN;
  try {
    const v = parseInt(fs.readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim(), 10);
    if (Number.isInteger(v) && v >= 0 && v < 64) n = v;
  } catch {
    /* no /proc: assume the newest capability we know */
  }
  lastCapCache = n;
  return n;
}

/** Bit mask of the named capabilities; unknown names throw, capabilities above lastCap() are skipped (as runc does). */
export function capMask(names: string[]): bigint {
  const last = lastCap();
  let mask = 0n;
  for (const name of names) {
    const n = capNumber(name);
    if (n > last) continue;
    mask |= 1n << BigInt(n);
  }
  return mask;
}
