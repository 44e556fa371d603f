// OCI linux.seccomp → classic BPF program, compiled in the parent with libseccomp (via koffi).
//
// The translation follows runc's libcontainer/seccomp: SCMP_ACT_KILL is KILL_THREAD, ERRNO and
// TRACE default to EPERM, syscall names unknown on the native arch are skipped, rules whose action
// equals the default action are skipped, several conditions on the same argument index become one
// rule per condition (an OR), and no_new_privs is left to the caller (SCMP_FLTATR_CTL_NNP = 0).
//
// koffi and libseccomp are only loaded inside compileSeccomp() (../kernel/libseccomp loads them
// lazily); describeSeccomp() is pure.

import os = require('os');
import type { Seccomp, SeccompSyscall } from './spec';
import * as L from '../kernel/libseccomp';
import type { ScmpArgCmp } from '../kernel/libseccomp';

export interface CompiledSeccomp {
  /** struct sock_filter[] bytes, 8 bytes per instruction (a struct sock_fprog's filter). */
  filter: Buffer;
  /** SECCOMP_FILTER_FLAG_* bits for seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog). */
  flags: number;
}

const EPERM = 1;

/** OCI flag names → SECCOMP_FILTER_FLAG_* bits (linux/seccomp.h). */
export const SECCOMP_FLAGS: Readonly<Record<string, number>> = {
  SECCOMP_FILTER_FLAG_TSYNC: 1,
  SECCOMP_FILTER_FLAG_LOG: 2,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: 4,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: 32,
};

/** OCI architecture names → libseccomp arch names (seccomp_arch_resolve_name). */
const ARCHES: Readonly<Record<string, string>> = {
  SCMP_ARCH_X86: 'x86',
  SCMP_ARCH_X86_64: 'x86_64',
  SCMP_ARCH_X32: 'x32',
  SCMP_ARCH_ARM: 'arm',
  SCMP_ARCH_AARCH64: 'aarch64',
  SCMP_ARCH_MIPS: 'mips',
  SCMP_ARCH_MIPS64: 'mips64',
  SCMP_ARCH_MIPS64N32: 'mips64n32',
  SCMP_ARCH_MIPSEL: 'mipsel',
  SCMP_ARCH_MIPSEL64: 'mipsel64',
  SCMP_ARCH_MIPSEL64N32: 'mipsel64n32',
  SCMP_ARCH_PPC: 'ppc',
  SCMP_ARCH_PPC64: 'ppc64',
  SCMP_ARCH_PPC64LE: 'ppc64le',
  SCMP_ARCH_S390: 's390',
  SCMP_ARCH_S390X: 's390x',
  SCMP_ARCH_PARISC: 'parisc',
  SCMP_ARCH_PARISC64: 'parisc64',
  SCMP_ARCH_RISCV64: 'riscv64',
  SCMP_ARCH_LOONGARCH64: 'loongarch64', // needs libseccomp >= 2.6
  SCMP_ARCH_M68K: 'm68k', // needs libseccomp >= 2.6
  SCMP_ARCH_SH: 'sh', // needs libseccomp >= 2.6
  SCMP_ARCH_SHEB: 'sheb', // needs libseccomp >= 2.6
};

/** OCI op names → enum scmp_compare (seccomp.h). */
const OPS: Readonly<Record<string, number>> = {
  SCMP_CMP_NE: 1,
  SCMP_CMP_LT: 2,
  SCMP_CMP_LE: 3,
  SCMP_CMP_EQ: 4,
  SCMP_CMP_GE: 5,
  SCMP_CMP_GT: 6,
  SCMP_CMP_MASKED_EQ: 7,
};

const ACTIONS = new Set([
  'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO',
  'SCMP_ACT_TRACE', 'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY',
]);

const U64_MAX = (1n << 64n) - 1n;

/** A validated rule, before libseccomp. */
interface Rule { names: string[]; actionName: string; action: number; conds: ScmpArgCmp[] }

/** Compiles linux.seccomp to BPF with libseccomp. Throws a one-line Error naming what failed. */
export function compileSeccomp(s: Seccomp): CompiledSeccomp {
  // Validate everything before loading any native code.
  if (!s || typeof s !== 'object') throw new Error('seccomp: linux.seccomp is not an object');
  const flags = flagBits(s.flags);
  const defaultAction = actionValue(s.defaultAction, s.defaultErrnoRet, 'defaultAction');
  const archNames = (s.architectures ?? []).map((a) => {
    const n = ARCHES[a];
    if (!n) throw new Error(`seccomp: unknown architecture "${a}"`);
    return { oci: a, lib: n };
  });
  const rules: Rule[] = (s.syscalls ?? []).map((sc, i) => validateRule(sc, i));

  // Native part.
  const lib = L.libseccomp();
  const fail = (what: string, rc: number): never => {
    throw new Error(`seccomp: ${what}: ${L.strerror(-rc)}`);
  };

  const ctx = lib.init(defaultAction);
  if (ctx === null) throw new Error(`seccomp: seccomp_init(${s.defaultAction}) failed`);
  try {
    let rc = lib.attrSet(ctx, L.SCMP_FLTATR_CTL_NNP, 0);
    if (rc < 0) fail('setting SCMP_FLTATR_CTL_NNP', rc);
    rc = lib.attrSet(ctx, L.SCMP_FLTATR_CTL_TSYNC, 0);
    if (rc < 0) fail('setting SCMP_FLTATR_CTL_TSYNC', rc);

    for (const a of archNames) {
      const token = lib.archResolveName(a.lib);
      if (!token) throw new Error(`seccomp: architecture "${a.oci}" is not supported by libseccomp ${lib.version}`);
      rc = lib.archAdd(ctx, token);
      if (rc < 0 && rc !== -os.constants.errno.EEXIST) fail(`adding architecture ${a.oci}`, rc);
    }

    for (const r of rules) {
      if (r.action === defaultAction) continue; // libseccomp refuses rules that match the default
      // runc: several conditions on one argument index cannot be ANDed by libseccomp;
      // they become one rule per condition.
      const seen = new Set<number>();
      let split = false;
      for (const c of r.conds) {
        if (seen.has(c.arg)) split = true;
        seen.add(c.arg);
      }
      const condSets = split ? r.conds.map((c) => [c]) : [r.conds];
      for (const name of r.names) {
        const nr = lib.syscallResolveName(name);
        if (nr === L.__NR_SCMP_ERROR) continue; // unknown on this arch: skip, as runc does
        for (const conds of condSets) {
          rc = lib.ruleAdd(ctx, r.action, nr, conds);
          if (rc < 0) fail(`rule for "${name}" (${r.actionName})`, rc);
        }
      }
    }

    return { filter: lib.exportBpf(ctx), flags };
  } finally {
    lib.release(ctx);
  }
}

/** One short line for a plan printout, e.g. "default SCMP_ACT_ALLOW, 3 rules (5 syscalls), 2 architectures". */
export function describeSeccomp(s: Seccomp): string {
  const rules = s.syscalls ?? [];
  const names = rules.reduce((n, r) => n + (r.names?.length ?? 0), 0);
  const arches = s.architectures?.length ?? 0;
  let def = String(s.defaultAction);
  if (def === 'SCMP_ACT_ERRNO' || def === 'SCMP_ACT_TRACE') def += `(${errnoLabel(s.defaultErrnoRet ?? EPERM)})`;
  const parts = [
    `default ${def}`,
    `${plural(rules.length, 'rule')} (${plural(names, 'syscall')})`,
    arches ? plural(arches, 'architecture') : 'native architecture',
  ];
  if (s.flags?.length) parts.push(`flags ${s.flags.map((f) => f.replace(/^SECCOMP_FILTER_FLAG_/, '')).join('|')}`);
  return parts.join(', ');
}

// ---- helpers ------------------------------------------------------------------------------

function flagBits(flags: string[] | undefined): number {
  let bits = 0;
  for (const f of flags ?? []) {
    const b = SECCOMP_FLAGS[f];
    if (b === undefined) throw new Error(`seccomp: unknown flag "${f}"`);
    bits |= b;
  }
  return bits;
}

/** The libseccomp action value (uint32) for an OCI action name. */
function actionValue(name: string, errnoRet: number | undefined, where: string): number {
  if (!ACTIONS.has(name)) throw new Error(`seccomp: unknown action "${name}" in ${where}`);
  const ret = errnoRet === undefined || errnoRet === null ? EPERM : errnoRet;
  const needRet = name === 'SCMP_ACT_ERRNO' || name === 'SCMP_ACT_TRACE';
  if (needRet && !(Number.isInteger(ret) && ret >= 0 && ret <= 0xffff)) {
    throw new Error(`seccomp: bad errnoRet ${JSON.stringify(errnoRet)} in ${where}`);
  }
  switch (name) {
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD': return 0x00000000;
    case 'SCMP_ACT_KILL_PROCESS': return 0x80000000;
    case 'SCMP_ACT_TRAP': return 0x00030000;
    case 'SCMP_ACT_ERRNO': return (0x00050000 | (ret & 0xffff)) >>> 0;
    case 'SCMP_ACT_TRACE': return (0x7ff00000 | (ret & 0xffff)) >>> 0;
    case 'SCMP_ACT_ALLOW': return 0x7fff0000;
    case 'SCMP_ACT_LOG': return 0x7ffc0000;
    case 'SCMP_ACT_NOTIFY':
      throw new Error(`seccomp: SCMP_ACT_NOTIFY (in ${where}) is not supported by tsrun`);
  }
  throw new Error(`seccomp: unknown action "${name}" in ${where}`);
}

function validateRule(sc: SeccompSyscall, i: number): Rule {
  const names = sc?.names;
  if (!Array.isArray(names) || names.some((n) => typeof n !== 'string')) {
    throw new Error(`seccomp: syscalls[${i}].names is not a list of strings`);
  }
  const where = `syscalls[${i}] (${names.slice(0, 3).join(',')}${names.length > 3 ? ',…' : ''})`;
  const action = actionValue(sc.action, sc.errnoRet, where);
  const conds: ScmpArgCmp[] = (sc.args ?? []).map((a) => {
    const op = OPS[a.op];
    if (op === undefined) throw new Error(`seccomp: unknown operator "${a.op}" in ${where}`);
    if (!Number.isInteger(a.index) || a.index < 0 || a.index > 5) {
      throw new Error(`seccomp: bad argument index ${JSON.stringify(a.index)} in ${where}`);
    }
    return { arg: a.index, op, datum_a: u64(a.value, where), datum_b: u64(a.valueTwo ?? 0, where) };
  });
  return { names, actionName: sc.action, action, conds };
}

/**
 * An argument value as uint64. JSON numbers above 2^53 have already lost precision in
 * JSON.parse; 18446744073709551615 parses to 2^64, which is clamped back to 2^64-1.
 * A bigint or a decimal/0x string (from a precision-preserving parser) is taken exactly.
 */
function u64(v: unknown, where: string): bigint {
  let b: bigint;
  try {
    if (typeof v === 'bigint') b = v;
    else if (typeof v === 'number' && Number.isInteger(v)) b = BigInt(v);
    else if (typeof v === 'string' && /^(0x[0-9a-f]+|\d+)$/i.test(v.trim())) b = BigInt(v.trim());
    else throw new Error();
  } catch {
    throw new Error(`seccomp: bad argument value ${JSON.stringify(String(v))} in ${where}`);
  }
  if (b === 1n << 64n) b = U64_MAX;
  if (b < 0n) {
    // A negative int (e.g. -1 for an int argument): two's complement, as Go's uint64(int) would.
    if (b < -(1n << 63n)) throw new Error(`seccomp: argument value ${b} out of range in ${where}`);
    b = BigInt.asUintN(64, b);
  }
  if (b > U64_MAX) throw new Error(`seccomp: argument value ${b} out of range in ${where}`);
  return b;
}

function errnoLabel(n: number): string {
  for (const [name, v] of Object.entries(os.constants.errno)) if (v === n) return name;
  return String(n);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
