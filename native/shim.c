/*
 * tsrun's native shim: a small interpreter of a container-creation plan.
 *
 * TypeScript computes the plan (an ordered list of plain operations) and
 * serialises it; tsrun_spawn() parses it, clones the child with the plan's
 * namespace flags, and the child performs the operations one by one, talking
 * to the parent over a socketpair.  The child makes only system calls: no
 * malloc, no stdio, no locks, no JavaScript (Node is multithreaded; after
 * clone() only this thread exists in the child).
 *
 * Messages child -> parent are struct msg {type, step, val}; an error names
 * the step (its index in the whole plan) and errno, and TypeScript turns it
 * into "step 7/23: mount proc on /proc (proc): Operation not permitted".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <net/if.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <stdlib.h>

#define PLAN_MAGIC 0x50525354u /* "TSRP" */
#define NSTR 6
#define NNUM 4
#define MAX_OPS 1024

enum {
  OP_SETNS = 1, OP_UNSHARE, OP_SYNC, OP_FORK, OP_SETSID, OP_PRCTL,
  OP_MOUNT, OP_REMOUNT_RO, OP_MKDIR, OP_MKNOD, OP_SYMLINK, OP_PIVOT_ROOT,
  OP_MOVE_ROOT, OP_CHDIR, OP_SETHOSTNAME, OP_SETDOMAINNAME, OP_WRITE_FILE,
  OP_RLIMIT, OP_MASK, OP_READONLY, OP_CAPBSET, OP_SETGROUPS, OP_SETRESGID,
  OP_SETRESUID, OP_CAPSET, OP_AMBIENT, OP_UMASK, OP_NNP, OP_SECCOMP,
  OP_CONNECT_CONSOLE, OP_CONSOLE, OP_OPEN_FIFO, OP_READY, OP_WAIT_FIFO,
  OP_WAIT_SOCK, OP_CLOSE_FDS, OP_FIND_EXEC, OP_EXECVE, OP_HOOK, OP_TOUCH,
  OP_MOUNT_DEV, OP_ROOT_FD, OP_KEYRING, OP_STDIN_NULL, OP_LO_UP, OP_DUP2,
};

enum { MSG_PID = 1, MSG_SYNC = 2, MSG_ERROR = 3, MSG_READY = 4, MSG_CONSOLE = 5 };

struct msg { uint32_t type; uint32_t step; int64_t val; };

struct op {
  uint32_t code, step;
  int64_t n[NNUM];
  uint32_t len[NSTR];
  const char *s[NSTR];
};

struct plan {
  uint64_t clone_flags;
  uint32_t nops;
  struct op ops[MAX_OPS];
};

/* Parsed in the parent before clone; the child reads its copy. */
static struct plan P;

/* Child-side state. */
static int sync_fd = -1, console_fd = -1, fifo_fd = -1, root_fd = -1;
static int64_t host_pid;
static char exec_path[4096];

/* ---- small helpers usable in the child (no allocation, no locks) ---- */

static void send_msg(uint32_t type, uint32_t step, int64_t val) {
  struct msg m = { type, step, val };
  (void)!send(sync_fd, &m, sizeof m, MSG_NOSIGNAL);
}

static __attribute__((noreturn)) void fail(const struct op *o, int err) {
  send_msg(MSG_ERROR, o->step, err ? err : EINVAL);
  _exit(1);
}

static int send_fd(int sock, int fd, const char *data, size_t len, uint32_t with_msg_step) {
  char cbuf[CMSG_SPACE(sizeof(int))];
  struct msg m = { MSG_CONSOLE, with_msg_step, 0 };
  struct iovec iov;
  if (data) { iov.iov_base = (void *)data; iov.iov_len = len; }
  else { iov.iov_base = &m; iov.iov_len = sizeof m; }
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  memset(cbuf, 0, sizeof cbuf);
  mh.msg_iov = &iov; mh.msg_iovlen = 1;
  mh.msg_control = cbuf; mh.msg_controllen = sizeof cbuf;
  struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET; c->cmsg_type = SCM_RIGHTS; c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof(int));
  return sendmsg(sock, &mh, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

static char *utoa(uint64_t v, char *end) { /* writes digits ending at end, returns start */
  *end = 0;
  do { *--end = (char)('0' + v % 10); v /= 10; } while (v);
  return end;
}

static size_t slen(const char *s) { size_t n = 0; while (s[n]) n++; return n; }

static void fdpath(int fd, char buf[64]) {
  static const char pre[] = "/proc/self/fd/";
  char num[24];
  char *d = utoa((uint64_t)fd, num + sizeof num - 1);
  memcpy(buf, pre, sizeof pre - 1);
  memcpy(buf + sizeof pre - 1, d, slen(d) + 1);
}

/* Open path (absolute, inside the container) under root_fd: symlinks resolve
 * as if root_fd were "/", so nothing can point out of the rootfs.  Missing
 * directories are created; the last component is created as a file (1) or a
 * directory (2) when create != 0.  flags != 0 reopens with those flags. */
static int openat_root(const char *path) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  return (int)syscall(SYS_openat2, root_fd, path, &how, sizeof how);
}

static int reopen(int fd, int flags) {
  if (fd < 0 || !flags) return fd;
  char p[64]; fdpath(fd, p);
  int f2 = open(p, flags | O_CLOEXEC);
  int e = errno; close(fd); errno = e;
  return f2;
}

static int open_in_root(const char *path, int create, int flags) {
  int fd = openat_root(path);
  if (fd >= 0 || !create || errno != ENOENT) return reopen(fd, flags);
  char buf[4096];
  size_t n = slen(path);
  if (n >= sizeof buf) { errno = ENAMETOOLONG; return -1; }
  memcpy(buf, path, n + 1);
  while (n > 1 && buf[n - 1] == '/') buf[--n] = 0;
  /* each prefix in turn: open it, or create it inside its (resolved) parent */
  for (size_t i = 1; i <= n; i++) {
    if (i < n && buf[i] != '/') continue;
    char save = buf[i];
    buf[i] = 0;
    int f = openat_root(buf);
    if (f < 0 && errno == ENOENT) {
      char *slash = buf + i;
      while (slash > buf && *slash != '/') slash--;
      *slash = 0;
      int parent = open_in_root(slash == buf ? "/" : buf, 0, O_RDONLY | O_DIRECTORY);
      *slash = '/';
      if (parent < 0) return -1;
      int r;
      if (i == n && create == 1) {
        r = openat(parent, slash + 1, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (r >= 0) close(r);
      } else r = mkdirat(parent, slash + 1, 0755);
      int e = errno; close(parent);
      if (r < 0 && e != EEXIST) { errno = e; return -1; }
      f = openat_root(buf);
    }
    buf[i] = save;
    if (f < 0) return -1;
    if (i == n) return reopen(f, flags);
    close(f);
  }
  errno = EINVAL;
  return -1;
}

/* Mount onto a target inside the root (via its O_PATH fd), or an absolute
 * path once we are past pivot_root (root_fd < 0). */
static int do_mount(const struct op *o, const char *src, const char *dst, const char *type,
                    unsigned long flags, const char *data, int create) {
  if (root_fd < 0) return mount(src, dst, type, flags, data);
  int fd = open_in_root(dst, create, 0);
  if (fd < 0) return -1;
  char p[64]; fdpath(fd, p);
  int r = mount(src, p, type, flags, data);
  int e = errno;
  close(fd);
  errno = e;
  (void)o;
  return r;
}

static unsigned long statvfs_flags(const char *path) {
  struct statvfs sv;
  unsigned long f = 0;
  if (statvfs(path, &sv) < 0) return 0;
  if (sv.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) f |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (sv.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME) f |= MS_RELATIME;
  return f;
}

/* Remount a (bind) mount with extra flags, keeping the flags it has (a user namespace may not
 * clear locked ones).  extra = MS_RDONLY for a read-only remount. */
static int remount(const char *path, unsigned long extra) {
  char p[64];
  const char *t = path;
  int fd = -1;
  if (root_fd >= 0) {
    fd = open_in_root(path, 0, 0);
    if (fd < 0) return -1;
    fdpath(fd, p); t = p;
  }
  unsigned long f = statvfs_flags(t);
  int r = mount(NULL, t, NULL, MS_BIND | MS_REMOUNT | f | extra, NULL);
  int e = errno;
  if (fd >= 0) close(fd);
  errno = e;
  return r;
}

static void sleep_ms(long ms) {
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
  nanosleep(&ts, NULL);
}

static int wait_sync(void) {
  int64_t v;
  ssize_t r;
  do r = recv(sync_fd, &v, sizeof v, 0); while (r < 0 && errno == EINTR);
  if (r != (ssize_t)sizeof v) return -1;
  if (v < 0) { errno = (int)-v; return -1; }
  if (v > 0) host_pid = v;
  return 0;
}

/* Split a NUL-separated list into a pointer array on the stack. */
static int split(const char *s, uint32_t len, char **out, int max) {
  int n = 0;
  uint32_t i = 0;
  while (i < len && n < max - 1) {
    out[n++] = (char *)s + i;
    while (i < len && s[i]) i++;
    i++;
  }
  out[n] = NULL;
  return n;
}

static int find_exec(const struct op *o) {
  const char *name = o->s[0], *path = o->s[1];
  struct stat st;
  if (!name[0]) { errno = ENOENT; return -1; }
  for (const char *c = name; *c; c++) if (*c == '/') {
    size_t n = slen(name);
    if (n >= sizeof exec_path) { errno = ENAMETOOLONG; return -1; }
    memcpy(exec_path, name, n + 1);
    if (stat(exec_path, &st) < 0) return -1;
    if (S_ISDIR(st.st_mode)) { errno = EACCES; return -1; }
    return 0;
  }
  const char *p = path;
  int saw_eacces = 0;
  while (1) {
    const char *e = p;
    while (*e && *e != ':') e++;
    size_t dl = (size_t)(e - p), nl = slen(name);
    if (dl + nl + 2 < sizeof exec_path) {
      if (dl) { memcpy(exec_path, p, dl); exec_path[dl] = '/'; dl++; }
      memcpy(exec_path + dl, name, nl + 1);
      if (stat(exec_path, &st) == 0 && S_ISREG(st.st_mode)) {
        if (access(exec_path, X_OK) == 0) return 0;
        saw_eacces = 1;
      }
    }
    if (!*e) break;
    p = e + 1;
  }
  errno = saw_eacces ? EACCES : ENOENT;
  return -1;
}

static int run_hook(const struct op *o) {
  /* s0 path, s1 argv, s2 env, s3 stdin prefix, s4 stdin suffix; n0 timeout s */
  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC) < 0) return -1;
  pid_t pid = (pid_t)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
  if (pid < 0) return -1;
  if (pid == 0) {
    char *argv[256], *envp[1024];
    split(o->s[1], o->len[1], argv, 256);
    split(o->s[2], o->len[2], envp, 1024);
    dup2(pfd[0], 0);
    execve(o->s[0], argv, envp);
    _exit(127);
  }
  close(pfd[0]);
  char num[24];
  char *d = utoa((uint64_t)host_pid, num + sizeof num - 1);
  (void)!write(pfd[1], o->s[3], slen(o->s[3]));
  (void)!write(pfd[1], d, slen(d));
  (void)!write(pfd[1], o->s[4], slen(o->s[4]));
  close(pfd[1]);
  long waited = 0, limit = o->n[0] > 0 ? o->n[0] * 1000 : -1;
  int st;
  for (;;) {
    pid_t r = waitpid(pid, &st, limit < 0 ? 0 : WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return -1;
    if (limit >= 0) {
      if (waited >= limit) { kill(pid, SIGKILL); waitpid(pid, &st, 0); errno = ETIMEDOUT; return -1; }
      sleep_ms(5); waited += 5;
    }
  }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) { errno = ECHILD; return -1; }
  return 0;
}

static int setup_console(const struct op *o) {
  int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) return -1;
  int unlock = 0;
  if (ioctl(master, TIOCSPTLCK, &unlock) < 0) return -1;
  int n;
  if (ioctl(master, TIOCGPTN, &n) < 0) return -1;
  char name[64] = "/dev/pts/";
  char num[24];
  char *d = utoa((uint64_t)n, num + sizeof num - 1);
  memcpy(name + 9, d, slen(d) + 1);
  if (o->n[1] > 0 && o->n[2] > 0) {
    struct winsize ws = { (unsigned short)o->n[1], (unsigned short)o->n[2], 0, 0 };
    ioctl(master, TIOCSWINSZ, &ws);
  }
  int slave = open(name, O_RDWR | O_NOCTTY);
  if (slave < 0) return -1;
  /* /dev/console: a bind mount of the pty, as runc does */
  int c = open("/dev/console", O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (c >= 0) { close(c); (void)mount(name, "/dev/console", NULL, MS_BIND, NULL); }
  int sock = o->n[0] == 1 ? console_fd : sync_fd;
  if (o->n[0] == 1) { if (send_fd(sock, master, name, slen(name), 0) < 0) return -1; }
  else if (send_fd(sock, master, NULL, 0, o->step) < 0) return -1;
  close(master);
  if (console_fd >= 0) { close(console_fd); console_fd = -1; }
  for (int i = 0; i < 3; i++) if (dup2(slave, i) < 0) return -1;
  if (slave > 2) close(slave);
  if (ioctl(0, TIOCSCTTY, 0) < 0) return -1;
  return 0;
}

struct cap_hdr { uint32_t version; int pid; };
struct cap_data { uint32_t effective, permitted, inheritable; };

static int run_op(const struct op *o) {
  switch (o->code) {
  case OP_SETNS: {
    int fd = open(o->s[0], O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int r = setns(fd, (int)o->n[0]);
    int e = errno; close(fd); errno = e;
    return r;
  }
  case OP_UNSHARE: return unshare((int)o->n[0]);
  case OP_SYNC:
    send_msg(MSG_SYNC, o->step, 0);
    return wait_sync();
  case OP_FORK: {
    /* The child waits until the parent has reported its pid (the parent's exit closes the pipe):
     * otherwise its own messages (sync, ready) can come first, and tsrun would take the
     * intermediate process for the container's (e.g. exec's exit status 0 instead of the real one). */
    int gate[2];
    if (pipe2(gate, O_CLOEXEC) < 0) return -1;
    pid_t pid = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
    if (pid < 0) { close(gate[0]); close(gate[1]); return -1; }
    if (pid > 0) { send_msg(MSG_PID, o->step, pid); _exit(0); }
    close(gate[1]);
    char c;
    while (read(gate[0], &c, 1) < 0 && errno == EINTR) ;
    close(gate[0]);
    return 0;
  }
  case OP_SETSID: return setsid() < 0 ? -1 : 0;
  case OP_PRCTL: return prctl((int)o->n[0], (unsigned long)o->n[1], (unsigned long)o->n[2], 0, 0);
  case OP_ROOT_FD:
    root_fd = open(o->s[0], O_PATH | O_DIRECTORY | O_CLOEXEC);
    return root_fd < 0 ? -1 : 0;
  case OP_MOUNT: {
    /* s0 source, s1 target (in root when root_fd is open), s2 type, s3 data; n0 flags, n1 create (0 none, 1 file, 2 dir), n2 flags for a following propagation change */
    const char *src = o->len[0] ? o->s[0] : NULL;
    const char *type = o->len[2] ? o->s[2] : NULL;
    const char *data = o->len[3] ? o->s[3] : NULL;
    if (do_mount(o, src, o->s[1], type, (unsigned long)o->n[0], data, (int)o->n[1]) < 0) return -1;
    if (o->n[2] && do_mount(o, NULL, o->s[1], NULL, (unsigned long)o->n[2], NULL, 0) < 0) return -1;
    return 0;
  }
  case OP_MOUNT_DEV: {
    /* bind the host's device s0 onto s1 (in a user namespace, where mknod is refused) */
    if (do_mount(o, o->s[0], o->s[1], NULL, MS_BIND, NULL, 1) < 0) return -1;
    return 0;
  }
  case OP_REMOUNT_RO: return remount(o->s[0], o->n[0] ? (unsigned long)o->n[0] : MS_RDONLY);
  case OP_KEYRING:
    if (syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, o->s[0]) < 0 && errno != ENOSYS) return -1;
    return 0;
  case OP_MKDIR: {
    int fd = open_in_root(o->s[0], 2, 0);
    if (fd < 0) return -1;
    close(fd);
    return 0;
  }
  case OP_TOUCH: {
    int fd = open_in_root(o->s[0], 1, 0);
    if (fd < 0) return -1;
    close(fd);
    return 0;
  }
  case OP_MKNOD: {
    /* s0 path inside root (its parent exists), n0 mode, n1 dev, n2 uid, n3 gid */
    char p[4096];
    size_t n = slen(o->s[0]);
    if (n >= sizeof p) { errno = ENAMETOOLONG; return -1; }
    memcpy(p, o->s[0], n + 1);
    char *slash = p + n;
    while (slash > p && *slash != '/') slash--;
    *slash = 0;
    int dfd = open_in_root(p[0] ? p : "/", 0, O_RDONLY | O_DIRECTORY);
    if (dfd < 0) return -1;
    const char *base = o->s[0] + (slash - p) + 1;
    unlinkat(dfd, base, 0);
    int r = mknodat(dfd, base, (mode_t)o->n[0], (dev_t)o->n[1]);
    if (r == 0) r = fchownat(dfd, base, (uid_t)o->n[2], (gid_t)o->n[3], AT_SYMLINK_NOFOLLOW);
    if (r == 0) r = fchmodat(dfd, base, (mode_t)(o->n[0] & 07777), 0);
    int e = errno; close(dfd); errno = e;
    return r;
  }
  case OP_SYMLINK: {
    char p[4096];
    size_t n = slen(o->s[1]);
    if (n >= sizeof p) { errno = ENAMETOOLONG; return -1; }
    memcpy(p, o->s[1], n + 1);
    char *slash = p + n;
    while (slash > p && *slash != '/') slash--;
    *slash = 0;
    int dfd = open_in_root(p[0] ? p : "/", 0, O_RDONLY | O_DIRECTORY);
    if (dfd < 0) return -1;
    int r = symlinkat(o->s[0], dfd, o->s[1] + (slash - p) + 1);
    int e = errno; close(dfd); errno = e;
    if (r < 0 && e == EEXIST) return 0;
    return r;
  }
  case OP_PIVOT_ROOT: {
    int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    if (oldroot < 0) return -1;
    int newroot = open(o->s[0], O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    if (newroot < 0) return -1;
    if (fchdir(newroot) < 0) return -1;
    if (syscall(SYS_pivot_root, ".", ".") < 0) return -1;
    if (fchdir(oldroot) < 0) return -1;
    if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0) return -1;
    if (umount2(".", MNT_DETACH) < 0) return -1;
    if (chdir("/") < 0) return -1;
    close(oldroot); close(newroot);
    if (root_fd >= 0) { close(root_fd); root_fd = -1; }
    return 0;
  }
  case OP_MOVE_ROOT:
    if (chdir(o->s[0]) < 0) return -1;
    if (mount(o->s[0], "/", NULL, MS_MOVE, NULL) < 0) return -1;
    if (chroot(".") < 0) return -1;
    if (chdir("/") < 0) return -1;
    if (root_fd >= 0) { close(root_fd); root_fd = -1; }
    return 0;
  case OP_CHDIR: return chdir(o->s[0]);
  case OP_SETHOSTNAME: return sethostname(o->s[0], slen(o->s[0]));
  case OP_SETDOMAINNAME: return setdomainname(o->s[0], slen(o->s[0]));
  case OP_WRITE_FILE: {
    int fd = open(o->s[0], O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t w = write(fd, o->s[1], slen(o->s[1]));
    int e = errno; close(fd); errno = e;
    return w < 0 ? -1 : 0;
  }
  case OP_RLIMIT: {
    struct rlimit rl = { (rlim_t)o->n[1], (rlim_t)o->n[2] };
    return setrlimit((int)o->n[0], &rl);
  }
  case OP_MASK: {
    struct stat st;
    if (stat(o->s[0], &st) < 0) return errno == ENOENT ? 0 : -1;
    if (S_ISDIR(st.st_mode))
      return mount("tmpfs", o->s[0], "tmpfs", MS_RDONLY, "size=0k");
    if (mount("/dev/null", o->s[0], NULL, MS_BIND, NULL) < 0) return -1;
    return 0;
  }
  case OP_READONLY: {
    struct stat st;
    if (stat(o->s[0], &st) < 0) return errno == ENOENT ? 0 : -1;
    if (mount(o->s[0], o->s[0], NULL, MS_BIND | MS_REC, NULL) < 0) return -1;
    return remount(o->s[0], MS_RDONLY);
  }
  case OP_CAPBSET: {
    uint64_t keep = (uint64_t)o->n[0];
    for (int c = 0; c <= (int)o->n[1]; c++)
      if (!(keep & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL) return -1;
    return 0;
  }
  case OP_SETGROUPS: {
    gid_t g[256];
    int n = (int)(o->len[0] / 4);
    if (n > 256) { errno = E2BIG; return -1; }
    memcpy(g, o->s[0], (size_t)n * 4);
    return (int)syscall(SYS_setgroups, n, g);
  }
  case OP_SETRESGID: return (int)syscall(SYS_setresgid, (gid_t)o->n[0], (gid_t)o->n[0], (gid_t)o->n[0]);
  case OP_SETRESUID: return (int)syscall(SYS_setresuid, (uid_t)o->n[0], (uid_t)o->n[0], (uid_t)o->n[0]);
  case OP_CAPSET: {
    struct cap_hdr h = { 0x20080522, 0 };
    struct cap_data d[2];
    uint64_t e = (uint64_t)o->n[0], p = (uint64_t)o->n[1], i = (uint64_t)o->n[2];
    d[0].effective = (uint32_t)e; d[1].effective = (uint32_t)(e >> 32);
    d[0].permitted = (uint32_t)p; d[1].permitted = (uint32_t)(p >> 32);
    d[0].inheritable = (uint32_t)i; d[1].inheritable = (uint32_t)(i >> 32);
    return (int)syscall(SYS_capset, &h, d);
  }
  case OP_AMBIENT: {
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0) return -1;
    uint64_t a = (uint64_t)o->n[0];
    for (int c = 0; c <= (int)o->n[1]; c++)
      if ((a & (1ULL << c)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0 && errno != EINVAL && errno != EPERM) return -1;
    return 0;
  }
  case OP_UMASK: umask((mode_t)o->n[0]); return 0;
  case OP_NNP: return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  case OP_SECCOMP: {
    struct sock_fprog prog = { (unsigned short)(o->len[0] / 8), (struct sock_filter *)o->s[0] };
    if (o->n[0] == 0) return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, (unsigned)o->n[0], &prog);
  }
  case OP_CONNECT_CONSOLE: {
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    size_t n = slen(o->s[0]);
    if (n >= sizeof a.sun_path) { errno = ENAMETOOLONG; return -1; }
    memcpy(a.sun_path, o->s[0], n);
    console_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (console_fd < 0) return -1;
    return connect(console_fd, (struct sockaddr *)&a, sizeof a);
  }
  case OP_CONSOLE: return setup_console(o);
  case OP_OPEN_FIFO:
    fifo_fd = open(o->s[0], O_PATH | O_CLOEXEC);
    return fifo_fd < 0 ? -1 : 0;
  case OP_READY: send_msg(MSG_READY, o->step, 0); return 0;
  case OP_WAIT_FIFO: {
    char p[64]; fdpath(fifo_fd, p);
    int fd = open(p, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    if (write(fd, "0", 1) != 1) return -1;
    close(fd); close(fifo_fd); fifo_fd = -1;
    return 0;
  }
  case OP_WAIT_SOCK: return wait_sync();
  case OP_CLOSE_FDS: {
    /* stdio blocking: a Node parent (tsrun itself, or the `tsrun create` a supervisor runs) makes its
     * pipes O_NONBLOCK, and the flag is the open file description's, shared with this process: a
     * program writing faster than its reader would get EAGAIN ("write error") and lose output */
    for (int f = 0; f < 3; f++) { int fl = fcntl(f, F_GETFL); if (fl >= 0 && (fl & O_NONBLOCK)) fcntl(f, F_SETFL, fl & ~O_NONBLOCK); }
    /* n0 = fds 3..3+n0-1 are passed on (--preserve-fds): clear their close-on-exec flag */
    unsigned first = 3 + (unsigned)o->n[0];
    for (unsigned f = 3; f < first; f++) { int fl = fcntl((int)f, F_GETFD); if (fl >= 0) fcntl((int)f, F_SETFD, fl & ~FD_CLOEXEC); }
    return (int)syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC);
  }
  case OP_FIND_EXEC: return find_exec(o);
  case OP_STDIN_NULL: {
    int fd = open("/dev/null", O_RDONLY);
    if (fd < 0) return -1;
    if (fd != 0 && (dup2(fd, 0) < 0 || close(fd) < 0)) return -1;
    return 0;
  }
  case OP_DUP2: return dup2((int)o->n[0], (int)o->n[1]) < 0 ? -1 : 0; /* n0 onto n1 (the engine's log pipes) */
  case OP_LO_UP: {
    /* lo of the new network namespace: SIOCGIFFLAGS, then set IFF_UP */
    struct ifreq ifr;
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, "lo", 3);
    int r = ioctl(s, SIOCGIFFLAGS, &ifr);
    if (r == 0 && !(ifr.ifr_flags & IFF_UP)) { ifr.ifr_flags |= IFF_UP; r = ioctl(s, SIOCSIFFLAGS, &ifr); }
    int e = errno;
    close(s);
    errno = e;
    return r < 0 ? -1 : 0;
  }
  case OP_HOOK: return run_hook(o);
  case OP_EXECVE: {
    char *argv[1024], *envp[4096];
    split(o->s[0], o->len[0], argv, 1024);
    split(o->s[1], o->len[1], envp, 4096);
    for (int i = 0; i < 3; i++) { int f = fcntl(i, F_GETFD); if (f >= 0) fcntl(i, F_SETFD, f & ~FD_CLOEXEC); }
    execve(exec_path[0] ? exec_path : argv[0], argv, envp);
    return -1;
  }
  }
  errno = ENOSYS;
  return -1;
}

static __attribute__((noreturn)) void child_main(int fd) {
  sync_fd = fd;
  /* Node's handlers are meaningless here: reset every disposition, then unblock. */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  for (int s = 1; s < 65; s++) if (s != SIGKILL && s != SIGSTOP) syscall(SYS_rt_sigaction, s, &sa, NULL, 8);
  sigset_t none;
  sigemptyset(&none);
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, 8);
  for (uint32_t i = 0; i < P.nops; i++) {
    const struct op *o = &P.ops[i];
    if (run_op(o) < 0) fail(o, errno);
  }
  /* the plan must end in execve; reaching here is a plan error */
  send_msg(MSG_ERROR, 0, ENOEXEC);
  _exit(1);
}

/* ---- parent side (called from TypeScript through koffi) ---- */

static int parse_plan(const uint8_t *b, uint32_t len) {
  uint32_t off = 0;
  if (len < 16) return -EINVAL;
  uint32_t magic, n;
  memcpy(&magic, b, 4); memcpy(&n, b + 4, 4); memcpy(&P.clone_flags, b + 8, 8);
  if (magic != PLAN_MAGIC || n > MAX_OPS) return -EINVAL;
  off = 16;
  for (uint32_t i = 0; i < n; i++) {
    struct op *o = &P.ops[i];
    if (off + 8 + 8 * NNUM + 4 * NSTR > len) return -EINVAL;
    memcpy(&o->code, b + off, 4); memcpy(&o->step, b + off + 4, 4); off += 8;
    memcpy(o->n, b + off, 8 * NNUM); off += 8 * NNUM;
    memcpy(o->len, b + off, 4 * NSTR); off += 4 * NSTR;
    for (int k = 0; k < NSTR; k++) {
      if (off + o->len[k] + 1 > len + 1 || off + o->len[k] >= len + 1) return -EINVAL;
      o->s[k] = (const char *)b + off;   /* each string is followed by a NUL */
      off += o->len[k] + 1;
      if (off > len) return -EINVAL;
    }
    off = (off + 7) & ~7u;
  }
  P.nops = n;
  return 0;
}

/* Copy of the plan bytes kept alive for the child (the JS buffer may move). */
static uint8_t *plan_copy;

/* Clone the child that runs the plan.  Returns its pid, or -errno.
 * *sock receives the parent's end of the sync socket. */
int tsrun_spawn(const uint8_t *plan, uint32_t len, int cgroup_fd, int *sock) {
  free(plan_copy);
  plan_copy = malloc(len + 8);
  if (!plan_copy) return -ENOMEM;
  memcpy(plan_copy, plan, len);
  memset(plan_copy + len, 0, 8);
  int r = parse_plan(plan_copy, len);
  if (r < 0) return r;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return -errno;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  struct clone_args ca;
  memset(&ca, 0, sizeof ca);
  ca.flags = P.clone_flags;
  ca.exit_signal = SIGCHLD;
  if (cgroup_fd >= 0) { ca.flags |= CLONE_INTO_CGROUP; ca.cgroup = (uint64_t)cgroup_fd; }
  long pid = syscall(SYS_clone3, &ca, sizeof ca);
  if (pid < 0 && errno == ENOSYS) {
    pid = syscall(SYS_clone, (unsigned long)(P.clone_flags & 0xffffffffu) | SIGCHLD, 0, 0, 0, 0);
  }
  if (pid == 0) { close(sv[0]); child_main(sv[1]); }
  int e = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  close(sv[1]);
  if (pid < 0) { close(sv[0]); return -e; }
  *sock = sv[0];
  return (int)pid;
}

/* Receive one message; out = {type, step, val, fd}.  Returns 1, 0 on EOF, -errno. */
int tsrun_recv(int sock, int64_t *out) {
  struct msg m;
  char cbuf[CMSG_SPACE(sizeof(int))];
  struct iovec iov = { &m, sizeof m };
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_iov = &iov; mh.msg_iovlen = 1;
  mh.msg_control = cbuf; mh.msg_controllen = sizeof cbuf;
  ssize_t r;
  do r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC); while (r < 0 && errno == EINTR);
  if (r < 0) return -errno;
  if (r == 0) return 0;
  out[0] = m.type; out[1] = m.step; out[2] = m.val; out[3] = -1;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) { int fd; memcpy(&fd, CMSG_DATA(c), sizeof fd); out[3] = fd; }
  return 1;
}

/* Reply to a SYNC: 0 = go on (or a host pid to record), negative = errno to fail with. */
int tsrun_reply(int sock, int64_t v) {
  return send(sock, &v, sizeof v, MSG_NOSIGNAL) == (ssize_t)sizeof v ? 0 : -errno;
}

/* Wait for a child; returns the raw wait status, or -errno. */
int tsrun_wait(int pid) {
  int st;
  pid_t r;
  do r = waitpid(pid, &st, __WALL); while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : st;
}

/* Send fd over a unix socket at path (runc's --console-socket protocol). */
int tsrun_send_console(const char *path, int fd, const char *name) {
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  size_t n = strlen(path);
  if (n >= sizeof a.sun_path) return -ENAMETOOLONG;
  memcpy(a.sun_path, path, n);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -errno;
  if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) { int e = errno; close(s); return -e; }
  int r = send_fd(s, fd, name, strlen(name), 0);
  int e = errno;
  close(s);
  return r < 0 ? -e : 0;
}

int tsrun_close(int fd) { return close(fd) < 0 ? -errno : 0; }

int tsrun_open(const char *path, int flags) { int fd = open(path, flags | O_CLOEXEC); return fd < 0 ? -errno : fd; }

/* Exit straight away once everything is written (skips Node's teardown). */
void tsrun_exit(int code) { _exit(code); }

int tsrun_mkfifo(const char *path, int mode) { return mkfifo(path, (mode_t)mode) < 0 ? -errno : 0; }

/* A close-on-exec pipe: fds[0] reads, fds[1] writes; 0 or -errno. */
int tsrun_pipe(int *fds) { return pipe2(fds, O_CLOEXEC) < 0 ? -errno : 0; }

/* Block until an exclusive lock on fd is held (0) or -errno. */
int tsrun_flock(int fd) {
  int r;
  do r = flock(fd, LOCK_EX); while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : 0;
}

int tsrun_winsize(int fd, int rows, int cols) {
  struct winsize ws = { (unsigned short)rows, (unsigned short)cols, 0, 0 };
  return ioctl(fd, TIOCSWINSZ, &ws) < 0 ? -errno : 0;
}

/* waitpid without blocking: the raw status, -EAGAIN while pid runs, or -errno. */
int tsrun_try_wait(int pid) {
  int st;
  pid_t r;
  do r = waitpid(pid, &st, WNOHANG | __WALL); while (r < 0 && errno == EINTR);
  if (r == 0) return -EAGAIN;
  return r < 0 ? -errno : st;
}

/* ---- Filesystem calls for the image store (src/kernel/fsops.ts) ---------------------------- */

#include <stdio.h>
#include <sys/xattr.h>

#ifndef FSOPEN_CLOEXEC
#define FSOPEN_CLOEXEC 0x00000001
#endif
#ifndef FSMOUNT_CLOEXEC
#define FSMOUNT_CLOEXEC 0x00000001
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#define TS_FSCONFIG_SET_STRING 1
#define TS_FSCONFIG_CMD_CREATE 6

int tsrun_mknod(const char *path, unsigned int mode, unsigned int major, unsigned int minor) {
  return mknod(path, (mode_t)mode, makedev(major, minor)) < 0 ? -errno : 0;
}

int tsrun_lsetxattr(const char *path, const char *name, const uint8_t *value, uint32_t len, int flags) {
  return lsetxattr(path, name, value, len, flags) < 0 ? -errno : 0;
}

/* The value's length (it may exceed len: then call again with a bigger buffer), or -errno. */
int tsrun_lgetxattr(const char *path, const char *name, uint8_t *buf, uint32_t len) {
  ssize_t n = lgetxattr(path, name, buf, len);
  if (n < 0 && errno == ERANGE) n = lgetxattr(path, name, NULL, 0);
  return n < 0 ? -errno : (int)n;
}

/* NUL-separated names; the list's length (may exceed len, as above), or -errno. */
int tsrun_llistxattr(const char *path, char *buf, uint32_t len) {
  ssize_t n = llistxattr(path, buf, len);
  if (n < 0 && errno == ERANGE) n = llistxattr(path, NULL, 0);
  return n < 0 ? -errno : (int)n;
}

int tsrun_umount2(const char *path, int flags) { return umount2(path, flags) < 0 ? -errno : 0; }

/* Append "what: kernel log messages" (or just "what") to err. */
static void ovl_err(int fsfd, const char *what, char *err, int errlen) {
  if (!err || errlen <= 0) return;
  int n = snprintf(err, (size_t)errlen, "%s", what);
  if (n < 0 || n >= errlen) return;
  if (fsfd < 0) return;
  char m[512];
  for (int i = 0; i < 8; i++) {
    ssize_t r = read(fsfd, m, sizeof m - 1);
    if (r <= 0) break;
    m[r] = 0;
    const char *t = m;
    if ((m[0] == 'e' || m[0] == 'w' || m[0] == 'i') && m[1] == ' ') t = m + 2;
    int k = snprintf(err + n, (size_t)(errlen - n), "%s%s", i ? "; " : ": ", t);
    if (k < 0 || k >= errlen - n) break;
    n += k;
  }
}

static const char *next_str(const uint8_t *p) { return (const char *)p + strlen((const char *)p) + 1; }

/* The legacy mount(2): one option string, limited to a page. */
static int ovl_legacy(const char *target, const uint8_t *lowers, int nlower, const char *upper, const char *work,
                      const uint8_t *opts, int nopts, int readonly, char *err, int errlen) {
  size_t cap = 4096, n = 0;
  char *data = malloc(cap + 1);
  if (!data) return -ENOMEM;
#define PUT(c) do { if (n >= cap) goto toolong; data[n++] = (c); } while (0)
  const char *k = "lowerdir=";
  while (*k) PUT(*k++);
  const char *l = (const char *)lowers;
  for (int i = 0; i < nlower; i++, l = next_str((const uint8_t *)l)) {
    if (i) PUT(':');
    for (const char *c = l; *c; c++) { if (*c == ':' || *c == ',' || *c == '\\') PUT('\\'); PUT(*c); }
  }
  for (int w = 0; w < 2 && upper && *upper; w++) {
    const char *v = w ? work : upper;
    for (const char *c = w ? ",workdir=" : ",upperdir="; *c; c++) PUT(*c);
    for (const char *c = v; *c; c++) { if (*c == ':' || *c == ',' || *c == '\\') PUT('\\'); PUT(*c); }
  }
  const char *o = (const char *)opts;
  for (int i = 0; i < nopts; i++, o = next_str((const uint8_t *)o)) {
    PUT(',');
    for (const char *c = o; *c; c++) PUT(*c);
  }
#undef PUT
  data[n] = 0;
  int r = mount("overlay", target, "overlay", readonly ? MS_RDONLY : 0, data);
  int e = errno;
  free(data);
  if (r < 0) { ovl_err(-1, "mount(2) overlay", err, errlen); return -e; }
  return 0;
toolong:
  free(data);
  ovl_err(-1, "mount(2) overlay: the options exceed a page (lowerdir+ is not available)", err, errlen);
  return -E2BIG;
}

/*
 * Mount overlayfs on target with the new mount API, so that many layers do not hit the page-size
 * limit of mount(2)'s option string: one fsconfig("lowerdir+") per lower dir.
 *   lowers: nlower NUL-terminated paths back to back, top first;
 *   upper/work: NULL or "" for a read-only mount without an upper dir;
 *   opts: nopts NUL-terminated "key=value" (or "key" flags) back to back, e.g. "index=off";
 *   readonly: mount read-only (MOUNT_ATTR_RDONLY).
 * Returns 0 or -errno, with "operation: kernel message" in err.  Kernels without lowerdir+
 * (< 6.8) fall back to mount(2) with one option string.
 */
int tsrun_mount_overlay(const char *target, const uint8_t *lowers, int nlower, const char *upper, const char *work,
                        const uint8_t *opts, int nopts, int readonly, char *err, int errlen) {
  if (err && errlen > 0) err[0] = 0;
  if (nlower < 1) { ovl_err(-1, "overlay: no lower dir", err, errlen); return -EINVAL; }
  /* fsconfig takes strings of at most 255 bytes: longer paths need mount(2) */
  int longpath = (upper && strlen(upper) > 255) || (work && strlen(work) > 255);
  const char *l = (const char *)lowers;
  for (int i = 0; i < nlower; i++, l = next_str((const uint8_t *)l)) if (strlen(l) > 255) longpath = 1;
  if (longpath) return ovl_legacy(target, lowers, nlower, upper, work, opts, nopts, readonly, err, errlen);
  int fd = (int)syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC);
  if (fd < 0) { int e = errno; ovl_err(-1, "fsopen overlay", err, errlen); return -e; }
  char what[400];
  l = (const char *)lowers;
  for (int i = 0; i < nlower; i++, l = next_str((const uint8_t *)l)) {
    if (syscall(SYS_fsconfig, fd, TS_FSCONFIG_SET_STRING, "lowerdir+", l, 0) < 0) {
      int e = errno;
      if (e == EINVAL && i == 0) {
        /* lowerdir+ unknown to this kernel */
        close(fd);
        return ovl_legacy(target, lowers, nlower, upper, work, opts, nopts, readonly, err, errlen);
      }
      snprintf(what, sizeof what, "fsconfig lowerdir+ %s (layer %d of %d)", l, i + 1, nlower);
      ovl_err(fd, what, err, errlen);
      close(fd);
      return -e;
    }
  }
  if (upper && *upper) {
    if (syscall(SYS_fsconfig, fd, TS_FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0) {
      int e = errno; snprintf(what, sizeof what, "fsconfig upperdir %s", upper); ovl_err(fd, what, err, errlen); close(fd); return -e;
    }
    if (syscall(SYS_fsconfig, fd, TS_FSCONFIG_SET_STRING, "workdir", work, 0) < 0) {
      int e = errno; snprintf(what, sizeof what, "fsconfig workdir %s", work); ovl_err(fd, what, err, errlen); close(fd); return -e;
    }
  }
  const char *o = (const char *)opts;
  for (int i = 0; i < nopts; i++, o = next_str((const uint8_t *)o)) {
    char key[64];
    const char *eq = strchr(o, '=');
    size_t kl = eq ? (size_t)(eq - o) : strlen(o);
    if (kl >= sizeof key) { close(fd); ovl_err(-1, "overlay: option name too long", err, errlen); return -EINVAL; }
    memcpy(key, o, kl);
    key[kl] = 0;
    long r = eq ? syscall(SYS_fsconfig, fd, TS_FSCONFIG_SET_STRING, key, eq + 1, 0)
                : syscall(SYS_fsconfig, fd, 0 /* FSCONFIG_SET_FLAG */, key, NULL, 0);
    if (r < 0) {
      int e = errno;
      snprintf(what, sizeof what, "fsconfig %.60s", o);
      ovl_err(fd, what, err, errlen);
      close(fd);
      return -e;
    }
  }
  if (syscall(SYS_fsconfig, fd, TS_FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
    int e = errno; ovl_err(fd, "fsconfig create", err, errlen); close(fd); return -e;
  }
  int mfd = (int)syscall(SYS_fsmount, fd, FSMOUNT_CLOEXEC, readonly ? MOUNT_ATTR_RDONLY : 0);
  if (mfd < 0) { int e = errno; ovl_err(fd, "fsmount", err, errlen); close(fd); return -e; }
  close(fd);
  if (syscall(SYS_move_mount, mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0) {
    int e = errno; ovl_err(-1, "move_mount", err, errlen); close(mfd); return -e;
  }
  close(mfd);
  return 0;
}

/* ---- network namespaces for the engine's bridge networks (one thread at a time: unshare and setns
 * of a network namespace act on the calling thread only; no JavaScript runs while it is away) */
#include <arpa/inet.h>
#include <net/route.h>
#include <netinet/in.h>

/* Back to the namespace this thread came from; staying in a container's namespace is not an option. */
static void netns_return(int self) {
  if (setns(self, CLONE_NEWNET) < 0) { static const char m[] = "tsrun: setns back to the host network namespace failed\n"; (void)!write(2, m, sizeof m - 1); abort(); }
  close(self);
}

/* A new network namespace, bound at path (an existing file): 0 or -errno. */
int tsrun_netns_new(const char *path) {
  int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) return -errno;
  if (unshare(CLONE_NEWNET) < 0) { int e = errno; close(self); return -e; }
  int r = mount("/proc/thread-self/ns/net", path, NULL, MS_BIND, NULL) < 0 ? -errno : 0;
  netns_return(self); /* without the bind mount, the new namespace goes with this last reference */
  return r;
}

/*
 * In the namespace bound at path: op 1 brings ifname up; op 2 gives it the IPv4 address addr/prefix
 * (its subnet route comes with it); op 3 adds the default route via addr. 0 or -errno.
 */
int tsrun_netns_op(const char *path, int op, const char *ifname, const char *addr, int prefix) {
  int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) return -errno;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) { int e = errno; close(self); return -e; }
  if (setns(fd, CLONE_NEWNET) < 0) { int e = errno; close(fd); close(self); return -e; }
  close(fd);
  int r = 0, s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  if (ifname) strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
  struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
  if (s < 0) r = -errno;
  else if (op == 1) {
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) r = -errno;
    else { ifr.ifr_flags |= IFF_UP; if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) r = -errno; }
  } else if (op == 2) {
    sin->sin_family = AF_INET;
    if (prefix < 0 || prefix > 32 || inet_pton(AF_INET, addr, &sin->sin_addr) != 1) r = -EINVAL;
    else if (ioctl(s, SIOCSIFADDR, &ifr) < 0) r = -errno;
    else {
      sin->sin_addr.s_addr = prefix ? htonl(~0u << (32 - prefix)) : 0;
      if (ioctl(s, SIOCSIFNETMASK, &ifr) < 0) r = -errno;
    }
  } else if (op == 3) {
    struct rtentry rt;
    memset(&rt, 0, sizeof rt);
    ((struct sockaddr_in *)&rt.rt_dst)->sin_family = AF_INET;
    ((struct sockaddr_in *)&rt.rt_genmask)->sin_family = AF_INET;
    struct sockaddr_in *gw = (struct sockaddr_in *)&rt.rt_gateway;
    gw->sin_family = AF_INET;
    rt.rt_flags = RTF_UP | RTF_GATEWAY;
    if (inet_pton(AF_INET, addr, &gw->sin_addr) != 1) r = -EINVAL;
    else if (ioctl(s, SIOCADDRT, &rt) < 0) r = -errno;
  } else r = -EINVAL;
  if (s >= 0) close(s);
  netns_return(self);
  return r;
}
