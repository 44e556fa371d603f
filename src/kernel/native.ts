// The only place that loads the FFI: koffi's prebuilt .node, loaded directly
// (its JS loader costs ~7 ms; the .node ~1 ms), and tsrun's C shim.
import path = require('path');
import os = require('os');

/* eslint-disable @typescript-eslint/no-explicit-any */
type Fn = (...args: any[]) => any;

export interface Shim {
  spawn(plan: Buffer, len: number, cgroupFd: number, sockOut: Int32Array): number;
  recv(sock: number, out: BigInt64Array): number;
  reply(sock: number, v: bigint): number;
  wait(pid: number): number;
  sendConsole(path: string, fd: number, name: string): number;
  close(fd: number): number;
  open(path: string, flags: number): number;
  exit(code: number): never;
  mkfifo(path: string, mode: number): number;
  flock(fd: number): number;
  winsize(fd: number, rows: number, cols: number): number;
  tryWait(pid: number): number;
  pipe(fds: Int32Array): number;
  netnsNew(path: string): number;
  netnsOp(path: string, op: number, ifname: string | null, addr: string | null, prefix: number): number;
}

// Shared through globalThis: dist/tsrun.js and dist/engine.js each carry a copy of this module,
// and the FFI must be loaded once per process.
const G = globalThis as { __tsrunKoffi?: any; __tsrunShim?: Shim };
let koffiMod: any = G.__tsrunKoffi;
let shim: Shim | undefined = G.__tsrunShim;

export function repoDir(): string {
  // bin/tsrun (the bundle) lives one level below the repo; dist/ too.
  return path.resolve(__dirname, '..');
}

export function koffi(): any {
  koffiMod ??= G.__tsrunKoffi;
  if (koffiMod) return koffiMod;
  const arch = process.arch === 'x64' ? 'x64' : process.arch;
  const direct = path.join(repoDir(), 'node_modules', 'koffi', 'build', 'koffi', `linux_${arch}`, 'koffi.node');
  try {
    const m = { exports: {} as any };
    process.dlopen(m, direct, os.constants.dlopen.RTLD_NOW);
    koffiMod = m.exports;
  } catch {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    koffiMod = require('koffi');
  }
  G.__tsrunKoffi = koffiMod;
  return koffiMod;
}

export function loaded(): boolean {
  return (shim ??= G.__tsrunShim) !== undefined;
}

export function native(): Shim {
  shim ??= G.__tsrunShim;
  if (shim) return shim;
  const k = koffi();
  const lib = k.load(process.env.TSRUN_SHIM || path.join(repoDir(), 'native', 'build', 'libtsrun.so'));
  shim = {
    spawn: lib.func('int tsrun_spawn(const uint8_t *plan, uint32_t len, int cgroup_fd, _Out_ int *sock)'),
    recv: lib.func('int tsrun_recv(int sock, _Out_ int64_t *out)'),
    reply: lib.func('int tsrun_reply(int sock, int64_t v)'),
    wait: lib.func('int tsrun_wait(int pid)'),
    sendConsole: lib.func('int tsrun_send_console(const char *path, int fd, const char *name)'),
    close: lib.func('int tsrun_close(int fd)'),
    open: lib.func('int tsrun_open(const char *path, int flags)'),
    exit: lib.func('void tsrun_exit(int code)'),
    mkfifo: lib.func('int tsrun_mkfifo(const char *path, int mode)'),
    flock: lib.func('int tsrun_flock(int fd)'),
    winsize: lib.func('int tsrun_winsize(int fd, int rows, int cols)'),
    tryWait: lib.func('int tsrun_try_wait(int pid)'),
    pipe: lib.func('int tsrun_pipe(_Out_ int *fds)'),
    netnsNew: lib.func('int tsrun_netns_new(const char *path)'),
    netnsOp: lib.func('int tsrun_netns_op(const char *path, int op, const char *ifname, const char *addr, int prefix)'),
  } as Shim;
  G.__tsrunShim = shim;
  return shim;
}

const errnoNames: Record<number, string> = {};
export function errnoName(e: number): string {
  if (!errnoNames[1]) for (const [k, v] of Object.entries(os.constants.errno)) errnoNames[v] ??= k;
  return errnoNames[e] ?? `errno ${e}`;
}

/** strerror(3) text for an errno number, as the C library prints it. */
export function strerror(e: number): string {
  return STRERROR[errnoName(e)] ?? errnoName(e);
}

const STRERROR: Record<string, string> = {
  EPERM: 'Operation not permitted', ENOENT: 'No such file or directory', ESRCH: 'No such process',
  EINTR: 'Interrupted system call', EIO: 'Input/output error', ENXIO: 'No such device or address',
  E2BIG: 'Argument list too long', ENOEXEC: 'Exec format error', EBADF: 'Bad file descriptor',
  ECHILD: 'No child processes', EAGAIN: 'Resource temporarily unavailable', ENOMEM: 'Cannot allocate memory',
  EACCES: 'Permission denied', EFAULT: 'Bad address', ENOTBLK: 'Block device required', EBUSY: 'Device or resource busy',
  EEXIST: 'File exists', EXDEV: 'Invalid cross-device link', ENODEV: 'No such device', ENOTDIR: 'Not a directory',
  EISDIR: 'Is a directory', EINVAL: 'Invalid argument', ENFILE: 'Too many open files in system',
  EMFILE: 'Too many open files', ENOTTY: 'Inappropriate ioctl for device', EFBIG: 'File too large',
  ENOSPC: 'No space left on device', ESPIPE: 'Illegal seek', EROFS: 'Read-only file system',
  EMLINK: 'Too many links', EPIPE: 'Broken pipe', ERANGE: 'Numerical result out of range',
  ENAMETOOLONG: 'File name too long', ENOSYS: 'Function not implemented', ENOTEMPTY: 'Directory not empty',
  ELOOP: 'Too many levels of symbolic links', ETIMEDOUT: 'Connection timed out', ECONNREFUSED: 'Connection refused',
  EOPNOTSUPP: 'Operation not supported', EXDEV_: '', ENOTSUP: 'Operation not supported',
};
