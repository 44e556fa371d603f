// Signal names ↔ numbers for `tsrun kill`, like runc's parseSignal (plus SIGRTMIN+n / SIGRTMAX-n).

import os = require('os');

/** glibc's user-visible real-time range on Linux (the kernel's 32 and 33 are reserved by glibc). */
const SIGRTMIN = 34;
const SIGRTMAX = 64;

/** Canonical names for numbers with aliases in os.constants.signals. */
const PREFERRED: Record<number, string> = { 6: 'SIGABRT', 29: 'SIGIO' };

/**
 * "9", "KILL", "SIGKILL", "kill", "SIGRTMIN", "RTMIN+3", "SIGRTMAX-2" → signal number.
 * A decimal number is taken as is (0–64); names are case-insensitive, SIG prefix optional.
 * Throws `unknown signal "X"` otherwise.
 */
export function parseSignal(s: string): number {
  const raw = String(s);
  const t = raw.trim();
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    if (n <= SIGRTMAX) return n;
    throw new Error(`unknown signal "${raw}"`);
  }
  let name = t.toUpperCase();
  if (!name.startsWith('SIG')) name = 'SIG' + name;
  const signals = os.constants.signals as Record<string, number>;
  if (Object.prototype.hasOwnProperty.call(signals, name)) return signals[name];
  const rt = /^SIGRT(MIN|MAX)(?:([+-])(\d+))?$/.exec(name);
  if (rt) {
    const base = rt[1] === 'MIN' ? SIGRTMIN : SIGRTMAX;
    const off = rt[3] === undefined ? 0 : Number(rt[3]);
    const n = rt[2] === '-' ? base - off : base + off;
    const dirOk = rt[2] === undefined || (rt[1] === 'MIN' ? rt[2] === '+' : rt[2] === '-');
    if (dirOk && n >= SIGRTMIN && n <= SIGRTMAX) return n;
  }
  throw new Error(`unknown signal "${raw}"`);
}

/** 9 → "SIGKILL", 34 → "SIGRTMIN", 37 → "SIGRTMIN+3", 62 → "SIGRTMAX-2"; otherwise "SIG<n>". */
export function signalName(n: number): string {
  if (PREFERRED[n]) return PREFERRED[n];
  for (const [name, v] of Object.entries(os.constants.signals as Record<string, number>)) if (v === n) return name;
  if (n === SIGRTMIN) return 'SIGRTMIN';
  if (n === SIGRTMAX) return 'SIGRTMAX';
  if (n > SIGRTMIN && n < SIGRTMAX) {
    // Same split as kill -l / strsignal: RTMIN+1..RTMIN+15, then RTMAX-14..RTMAX-1.
    return n - SIGRTMIN <= 15 ? `SIGRTMIN+${n - SIGRTMIN}` : `SIGRTMAX-${SIGRTMAX - n}`;
  }
  return `SIG${n}`;
}
