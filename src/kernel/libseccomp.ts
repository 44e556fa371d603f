// Thin FFI binding to Debian's libseccomp (libseccomp.so.2, 2.5.x) through koffi.
//
// Nothing here runs at module load: koffi, libseccomp.so.2 and libc.so.6 are loaded on the
// first call to libseccomp(), so that importing this module costs nothing on the start path.
// Constants come from /usr/include/seccomp.h.

import fs = require('fs');
import os = require('os');
import { koffi as loadKoffi } from './native';

type Koffi = typeof import('koffi');

// ---- seccomp.h constants -------------------------------------------------------------------

export const SCMP_ACT_KILL_PROCESS = 0x80000000;
export const SCMP_ACT_KILL_THREAD = 0x00000000;
export const SCMP_ACT_KILL = SCMP_ACT_KILL_THREAD;
export const SCMP_ACT_TRAP = 0x00030000;
export const SCMP_ACT_NOTIFY = 0x7fc00000;
export const SCMP_ACT_LOG = 0x7ffc0000;
export const SCMP_ACT_ALLOW = 0x7fff0000;
/** SCMP_ACT_ERRNO(x) */
export function scmpActErrno(errno: number): number { return (0x00050000 | (errno & 0xffff)) >>> 0; }
/** SCMP_ACT_TRACE(x) */
export function scmpActTrace(msg: number): number { return (0x7ff00000 | (msg & 0xffff)) >>> 0; }

/** enum scmp_compare */
export const SCMP_CMP_NE = 1;
export const SCMP_CMP_LT = 2;
export const SCMP_CMP_LE = 3;
export const SCMP_CMP_EQ = 4;
export const SCMP_CMP_GE = 5;
export const SCMP_CMP_GT = 6;
export const SCMP_CMP_MASKED_EQ = 7;

/** enum scmp_filter_attr */
export const SCMP_FLTATR_ACT_DEFAULT = 1;
export const SCMP_FLTATR_ACT_BADARCH = 2;
export const SCMP_FLTATR_CTL_NNP = 3;
export const SCMP_FLTATR_CTL_TSYNC = 4;
export const SCMP_FLTATR_API_TSKIP = 5;
export const SCMP_FLTATR_CTL_LOG = 6;
export const SCMP_FLTATR_CTL_SSB = 7;
export const SCMP_FLTATR_CTL_OPTIMIZE = 8;
export const SCMP_FLTATR_API_SYSRAWRC = 9;

/** seccomp_syscall_resolve_name() result for a name unknown on the native arch. */
export const __NR_SCMP_ERROR = -1;

/** struct scmp_arg_cmp, as passed to seccomp_rule_add_array(). datum_* are uint64. */
export interface ScmpArgCmp { arg: number; op: number; datum_a: bigint; datum_b: bigint }

/** An opaque scmp_filter_ctx (koffi external pointer). */
export type ScmpFilterCtx = unknown;

export interface LibSeccomp {
  /** Library version, e.g. "2.5.4". */
  version: string;
  /** NULL (null) on failure. */
  init(defAction: number): ScmpFilterCtx | null;
  release(ctx: ScmpFilterCtx): void;
  /** Architecture token (AUDIT_ARCH_*) for a libseccomp arch name ("x86_64", "aarch64"…); 0 if unknown. */
  archResolveName(name: string): number;
  archNative(): number;
  /** 0 or -errno (-EEXIST if already present). */
  archAdd(ctx: ScmpFilterCtx, token: number): number;
  /** 0 or -errno. */
  attrSet(ctx: ScmpFilterCtx, attr: number, value: number): number;
  /** Native syscall number, or __NR_SCMP_ERROR. */
  syscallResolveName(name: string): number;
  /** 0 or -errno. */
  ruleAdd(ctx: ScmpFilterCtx, action: number, syscall: number, args: ScmpArgCmp[]): number;
  /** The filter as struct sock_filter[] bytes; throws on failure. */
  exportBpf(ctx: ScmpFilterCtx): Buffer;
}

// ---- lazy loading -------------------------------------------------------------------------

let lib: LibSeccomp | undefined;
let libcStrerror: ((errnum: number) => string) | undefined;

const MFD_CLOEXEC = 1;

/** Loads koffi, libseccomp.so.2 and libc.so.6 (once) and returns the binding. Throws a one-line Error if unavailable. */
export function libseccomp(): LibSeccomp {
  if (lib) return lib;
  let koffi: Koffi;
  try {
    koffi = loadKoffi() as Koffi;
  } catch (e) {
    throw new Error(`seccomp: cannot load the koffi FFI module: ${firstLine(e)}`);
  }
  let so: ReturnType<Koffi['load']>;
  let libc: ReturnType<Koffi['load']>;
  try {
    so = koffi.load('libseccomp.so.2');
  } catch (e) {
    throw new Error(`seccomp: cannot load libseccomp.so.2 (install libseccomp2): ${firstLine(e)}`);
  }
  try {
    libc = koffi.load('libc.so.6');
  } catch (e) {
    throw new Error(`seccomp: cannot load libc.so.6: ${firstLine(e)}`);
  }

  // Struct types are registered globally by name in koffi: declare once, resolve afterwards.
  const argCmp = declareStruct(koffi, 'scmp_arg_cmp', {
    arg: 'unsigned int',
    op: 'int', // enum scmp_compare
    datum_a: 'uint64_t',
    datum_b: 'uint64_t',
  });
  if (koffi.sizeof(argCmp) !== 24) throw new Error('seccomp: unexpected sizeof(struct scmp_arg_cmp)');
  const versionT = declareStruct(koffi, 'scmp_version', { major: 'unsigned int', minor: 'unsigned int', micro: 'unsigned int' });

  const f = {
    version: so.func('const scmp_version *seccomp_version(void)'),
    init: so.func('void *seccomp_init(uint32_t def_action)'),
    release: so.func('void seccomp_release(void *ctx)'),
    archResolveName: so.func('uint32_t seccomp_arch_resolve_name(const char *arch_name)'),
    archNative: so.func('uint32_t seccomp_arch_native(void)'),
    archAdd: so.func('int seccomp_arch_add(void *ctx, uint32_t arch_token)'),
    attrSet: so.func('int seccomp_attr_set(void *ctx, int attr, uint32_t value)'),
    resolveName: so.func('int seccomp_syscall_resolve_name(const char *name)'),
    ruleAddArray: so.func(
      'int seccomp_rule_add_array(void *ctx, uint32_t action, int syscall, unsigned int arg_cnt, const scmp_arg_cmp *arg_array)'),
    exportBpf: so.func('int seccomp_export_bpf(void *ctx, int fd)'),
    memfdCreate: libc.func('int memfd_create(const char *name, unsigned int flags)'),
    strerror: libc.func('const char *strerror(int errnum)'),
  };
  // seccomp_version() returns a pointer to a static struct { unsigned int major, minor, micro; }.
  let version = '?';
  try {
    const p = f.version();
    if (p) {
      const v = koffi.decode(p, versionT) as { major: number; minor: number; micro: number };
      version = `${v.major}.${v.minor}.${v.micro}`;
    }
  } catch { /* informational only */ }

  libcStrerror = (n: number) => String(f.strerror(n));

  lib = {
    version,
    init: (a) => (f.init(a >>> 0) as ScmpFilterCtx | null) ?? null,
    release: (ctx) => { f.release(ctx); },
    archResolveName: (name) => f.archResolveName(name) as number,
    archNative: () => f.archNative() as number,
    archAdd: (ctx, token) => f.archAdd(ctx, token >>> 0) as number,
    attrSet: (ctx, attr, value) => f.attrSet(ctx, attr, value >>> 0) as number,
    syscallResolveName: (name) => f.resolveName(name) as number,
    ruleAdd: (ctx, action, nr, args) =>
      f.ruleAddArray(ctx, action >>> 0, nr, args.length, args.length ? args : null) as number,
    exportBpf: (ctx) => {
      const fd = f.memfdCreate('tsrun-seccomp', MFD_CLOEXEC) as number;
      if (fd < 0) {
        const errno = koffi.errno();
        throw new Error(`seccomp: memfd_create: ${strerror(errno)}`);
      }
      try {
        const rc = f.exportBpf(ctx, fd) as number;
        if (rc < 0) throw new Error(`seccomp: seccomp_export_bpf: ${strerror(-rc)}`);
        const size = fs.fstatSync(fd).size;
        const buf = Buffer.alloc(size);
        let off = 0;
        while (off < size) {
          const n = fs.readSync(fd, buf, off, size - off, off);
          if (n <= 0) break;
          off += n;
        }
        if (off !== size) throw new Error(`seccomp: short read of exported BPF (${off} of ${size} bytes)`);
        if (size === 0 || size % 8 !== 0) throw new Error(`seccomp: exported BPF has a bad size (${size} bytes)`);
        return buf;
      } finally {
        fs.closeSync(fd);
      }
    },
  };
  return lib;
}

/** strerror(3) for a positive errno (libc's text once libc is loaded, else the errno name). */
export function strerror(errno: number): string {
  const n = Math.abs(errno);
  if (libcStrerror) {
    try { return libcStrerror(n); } catch { /* fall through */ }
  }
  return errnoName(n) ?? `errno ${n}`;
}

/** "EPERM" for 1, etc. (undefined if unknown). */
export function errnoName(errno: number): string | undefined {
  for (const [name, v] of Object.entries(os.constants.errno)) if (v === errno) return name;
  return undefined;
}

function declareStruct(koffi: Koffi, name: string, def: Record<string, string>): ReturnType<Koffi['struct']> {
  try {
    return koffi.struct(name, def);
  } catch {
    return koffi.resolve(name);
  }
}

function firstLine(e: unknown): string {
  return String(e instanceof Error ? e.message : e).split('\n')[0];
}
