// Docker's default seccomp profile (moby's profiles/seccomp: an allow-list, EPERM for everything
// else), in Docker's profile format, and its translation to an OCI linux.seccomp for one container.
//
// Docker's format adds to the OCI one: `archMap` (the native architecture and its compat
// sub-architectures), `name` as well as `names`, and per-rule `includes`/`excludes` conditions on
// the container's capabilities (its bounding set), the native architecture (Go's GOARCH names:
// amd64, arm64, ...) and the kernel version. `seccompForContainer` applies them exactly as moby's
// setupSeccomp does, so a user's profile in Docker's format (`--security-opt seccomp=FILE`) works
// too. Names libseccomp does not know on this architecture are skipped by src/runtime/seccomp.ts.
import os = require('os');
import type { Seccomp, SeccompSyscall } from '../runtime/spec';

export interface DockerSeccompFilter {
  caps?: string[];
  arches?: string[];
  minKernel?: string;
}

export interface DockerSeccompRule {
  name?: string;
  names?: string[];
  action: string;
  errnoRet?: number;
  args?: NonNullable<SeccompSyscall['args']>;
  comment?: string;
  includes?: DockerSeccompFilter;
  excludes?: DockerSeccompFilter;
}

export interface DockerSeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  archMap?: { architecture: string; subArchitectures: string[] | null }[];
  flags?: string[];
  listenerPath?: string;
  syscalls?: DockerSeccompRule[];
}

const words = (s: string): string[] => s.trim().split(/\s+/);

const EPERM = 1;
const ENOSYS = 38;
const AF_VSOCK = 40;
/** CLONE_NEWNS|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWUSER|CLONE_NEWPID|CLONE_NEWNET|CLONE_NEWCGROUP */
const CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x02000000;

/** Allowed for every container: what ordinary programs need, nothing that reaches past the container. */
const ALWAYS = words(`
  accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown chown32
  clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
  clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat
  dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
  epoll_wait_old eventfd eventfd2 execve execveat exit exit_group
  faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchmodat2
  fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr
  fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_requeue futex_time64
  futex_wait futex_waitv futex_wake futimesat
  getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups
  getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid
  getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname getsockopt
  get_thread_area gettid gettimeofday getuid getuid32 getxattr
  inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents
  io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit io_uring_enter
  io_uring_register io_uring_setup ipc kill
  landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat
  listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64
  madvise map_shadow_stack membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock
  mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
  mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv msgsnd
  msync munlock munlockall munmap
  name_to_handle_at nanosleep newfstatat _newselect open openat openat2
  pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll
  ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64
  pwritev pwritev2
  read readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg
  remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq rt_sigaction
  rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait
  rt_sigtimedwait_time64 rt_tgsigqueueinfo
  sched_getaffinity sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min
  sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr
  sched_setparam sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop
  semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid
  setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority setregid setregid32
  setresgid setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit set_robust_list setsid
  setsockopt set_thread_area set_tid_address setuid setuid32 setxattr shmat shmctl shmdt shmget
  shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn socketcall socketpair splice stat
  stat64 statfs statfs64 statx symlink symlinkat sync sync_file_range syncfs sysinfo
  tee tgkill time timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64
  timer_settime timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime
  timerfd_settime64 times tkill truncate truncate64
  ugetrlimit umask uname unlink unlinkat utime utimensat utimensat_time64 utimes
  vfork vmsplice wait4 waitid waitpid write writev
`);

const allow = (names: string[], extra: Partial<DockerSeccompRule> = {}): DockerSeccompRule => ({ names, action: 'SCMP_ACT_ALLOW', ...extra });
const withCap = (cap: string, names: string): DockerSeccompRule => allow(words(names), { includes: { caps: [cap] } });
const onArches = (arches: string[], names: string): DockerSeccompRule => allow(words(names), { includes: { arches } });

/** Docker's default profile. */
export const DEFAULT_SECCOMP_PROFILE: Readonly<DockerSeccompProfile> = {
  defaultAction: 'SCMP_ACT_ERRNO',
  defaultErrnoRet: EPERM,
  archMap: [
    { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
    { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
    { architecture: 'SCMP_ARCH_MIPS64', subArchitectures: ['SCMP_ARCH_MIPS', 'SCMP_ARCH_MIPS64N32'] },
    { architecture: 'SCMP_ARCH_MIPS64N32', subArchitectures: ['SCMP_ARCH_MIPS', 'SCMP_ARCH_MIPS64'] },
    { architecture: 'SCMP_ARCH_MIPSEL64', subArchitectures: ['SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64N32'] },
    { architecture: 'SCMP_ARCH_MIPSEL64N32', subArchitectures: ['SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64'] },
    { architecture: 'SCMP_ARCH_S390X', subArchitectures: ['SCMP_ARCH_S390'] },
    { architecture: 'SCMP_ARCH_RISCV64', subArchitectures: null },
  ],
  syscalls: [
    allow(ALWAYS),
    allow(words('process_vm_readv process_vm_writev ptrace'), { includes: { minKernel: '4.8' } }),
    // sockets of every family but AF_VSOCK (it reaches the host's hypervisor)
    allow(['socket'], { args: [{ index: 0, value: AF_VSOCK, op: 'SCMP_CMP_NE' }] }),
    // personality(2): only the harmless personas (PER_LINUX, PER_LINUX32, UNAME26 variants, query)
    ...[0x0, 0x8, 0x20000, 0x20008, 0xffffffff].map((v) => allow(['personality'], { args: [{ index: 0, value: v, op: 'SCMP_CMP_EQ' }] })),
    onArches(['ppc64le'], 'sync_file_range2 swapcontext'),
    onArches(['arm', 'arm64'], 'arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls'),
    onArches(['amd64', 'x32'], 'arch_prctl'),
    onArches(['amd64', 'x32', 'x86'], 'modify_ldt'),
    onArches(['s390', 's390x'], 's390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr'),
    onArches(['riscv64'], 'riscv_flush_icache'),
    withCap('CAP_DAC_READ_SEARCH', 'open_by_handle_at'),
    withCap('CAP_SYS_ADMIN', `bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount
      mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname sethostname setns
      syslog umount umount2 unshare`),
    // without CAP_SYS_ADMIN: clone only without namespace flags (threads and fork still work) ...
    allow(['clone'], {
      args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
      excludes: { caps: ['CAP_SYS_ADMIN'], arches: ['s390', 's390x'] },
    }),
    allow(['clone'], {
      args: [{ index: 1, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
      comment: 's390 parameter ordering for clone is different',
      includes: { arches: ['s390', 's390x'] },
      excludes: { caps: ['CAP_SYS_ADMIN'] },
    }),
    // ... and clone3 (whose flags live in memory, out of seccomp's reach) says ENOSYS: libc falls back to clone
    { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS, excludes: { caps: ['CAP_SYS_ADMIN'] } },
    withCap('CAP_SYS_BOOT', 'reboot'),
    withCap('CAP_SYS_CHROOT', 'chroot'),
    withCap('CAP_SYS_MODULE', 'delete_module init_module finit_module'),
    withCap('CAP_SYS_PACCT', 'acct'),
    withCap('CAP_SYS_PTRACE', 'kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace'),
    withCap('CAP_SYS_RAWIO', 'iopl ioperm'),
    withCap('CAP_SYS_TIME', 'settimeofday stime clock_settime clock_settime64'),
    withCap('CAP_SYS_TTY_CONFIG', 'vhangup'),
    withCap('CAP_SYS_NICE', 'get_mempolicy mbind set_mempolicy set_mempolicy_home_node'),
    withCap('CAP_SYSLOG', 'syslog'),
    withCap('CAP_BPF', 'bpf'),
    withCap('CAP_PERFMON', 'perf_event_open'),
  ],
};

/** Node's process.arch → Go's GOARCH, the names Docker's includes/excludes use. */
const GOARCH: Record<string, string> = {
  x64: 'amd64', ia32: '386', arm: 'arm', arm64: 'arm64', s390x: 's390x', ppc64: 'ppc64le',
  riscv64: 'riscv64', mips64el: 'mips64le', mipsel: 'mipsle', loong64: 'loong64',
};
/** GOARCH → the seccomp name of that native architecture (moby's nativeToSeccomp). */
const NATIVE_SECCOMP: Record<string, string> = {
  amd64: 'SCMP_ARCH_X86_64', '386': 'SCMP_ARCH_X86', arm64: 'SCMP_ARCH_AARCH64', arm: 'SCMP_ARCH_ARM',
  mips64: 'SCMP_ARCH_MIPS64', mips64n32: 'SCMP_ARCH_MIPS64N32', mipsel64: 'SCMP_ARCH_MIPSEL64',
  mips64le: 'SCMP_ARCH_MIPSEL64', mipsel64n32: 'SCMP_ARCH_MIPSEL64N32', mipsle: 'SCMP_ARCH_MIPSEL',
  ppc64le: 'SCMP_ARCH_PPC64LE', riscv64: 'SCMP_ARCH_RISCV64', s390x: 'SCMP_ARCH_S390X', loong64: 'SCMP_ARCH_LOONGARCH64',
};

/** "5.15.0-91-generic" ≥ "4.8"? */
export function kernelAtLeast(want: string, release = os.release()): boolean {
  const parse = (s: string) => (/^(\d+)\.(\d+)/.exec(s) ?? []).slice(1).map(Number);
  const [wm, wn] = parse(want);
  const [km, kn] = parse(release);
  if (wm === undefined || wn === undefined || Number.isNaN(wm) || Number.isNaN(wn)) throw new Error(`invalid kernel version "${want}"`);
  if (km === undefined || kn === undefined) return false;
  return km > wm || (km === wm && kn >= wn);
}

/**
 * A Docker-format profile → the linux.seccomp of a container whose bounding set is `caps`
 * (moby's setupSeccomp). Throws a one-line Error for a malformed profile.
 */
export function seccompForContainer(p: DockerSeccompProfile, caps: string[], arch = process.arch, release = os.release()): Seccomp {
  if (!p || typeof p !== 'object' || Array.isArray(p)) throw new Error('the seccomp profile is not a JSON object');
  if (p.architectures?.length && p.archMap?.length) {
    throw new Error("both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'");
  }
  if (p.syscalls !== undefined && p.syscalls !== null && !Array.isArray(p.syscalls)) throw new Error("the seccomp profile's syscalls is not a list");
  const goarch = GOARCH[arch] ?? arch;
  const out: Seccomp = { defaultAction: p.defaultAction };
  if (p.defaultErrnoRet !== undefined && p.defaultErrnoRet !== null) out.defaultErrnoRet = p.defaultErrnoRet;
  if (p.flags?.length) out.flags = [...p.flags];
  if (p.listenerPath) out.listenerPath = p.listenerPath;
  const archs = [...(p.architectures ?? [])];
  const native = NATIVE_SECCOMP[goarch];
  const entry = native ? p.archMap?.find((a) => a.architecture === native) : undefined;
  if (entry) archs.push(entry.architecture, ...(entry.subArchitectures ?? []));
  if (archs.length) out.architectures = archs;
  const has = new Set(caps);
  const syscalls: SeccompSyscall[] = [];
  for (const call of p.syscalls ?? []) {
    if (!call || typeof call !== 'object') throw new Error('a seccomp rule is not a JSON object');
    let names = call.names ?? [];
    if (call.name) {
      if (names.length) throw new Error("use either 'name' or 'names'");
      names = [call.name];
    }
    const ex = call.excludes;
    if (ex) {
      if (ex.arches?.includes(goarch)) continue;
      if (ex.caps?.some((c) => has.has(c))) continue;
      if (ex.minKernel && kernelAtLeast(ex.minKernel, release)) continue;
    }
    const inc = call.includes;
    if (inc) {
      if (inc.arches?.length && !inc.arches.includes(goarch)) continue;
      if (inc.caps?.length && !inc.caps.every((c) => has.has(c))) continue;
      if (inc.minKernel && !kernelAtLeast(inc.minKernel, release)) continue;
    }
    const rule: SeccompSyscall = { names, action: call.action };
    if (call.errnoRet !== undefined && call.errnoRet !== null) rule.errnoRet = call.errnoRet;
    if (call.args?.length) rule.args = call.args.map((a) => ({ ...a }));
    syscalls.push(rule);
  }
  out.syscalls = syscalls;
  return out;
}
