// probe: a tiny static test program copied into the test rootfs as /probe.
// Built with `gcc -static -O2 -o probe probe.c` by scripts/make-test-image.sh.
// Every subcommand prints one short, machine-checkable answer on stdout.
//
//   memhog MB            allocate and touch MB MiB, then print "done"
//   forkbomb N           fork N sleeping children; print "forked K ERRNO" (ERRNO "none" if all worked)
//   mkdir PATH           mkdir(PATH, 0755): print "ok" or the errno name; exit 0 either way
//   mount-tmpfs PATH     mount("tmpfs", PATH, "tmpfs"): "ok" or errno name
//   write PATH [TEXT]    create/truncate PATH and write TEXT: "ok" or errno name
//   caps                 CapInh/CapPrm/CapEff/CapBnd/CapAmb lines from /proc/self/status
//   id                   "uid=U gid=G groups=A,B"
//   isatty               "stdin=0|1 stdout=0|1"
//   sleep                pause forever; exits 143 on SIGTERM, 130 on SIGINT (handlers installed)
//   pause                pause forever, default signal dispositions
//   rlimit NAME          "SOFT HARD" (numbers or "unlimited"); NAME like NOFILE or RLIMIT_NOFILE
//   umask                "0022"
//   nnp                  NoNewPrivs value ("0" or "1")
//   seccomp              Seccomp value ("0", "1" or "2")
//   syscall-errno NAME   raw syscall: mkdir mkdirat personality unshare chroot getpid sethostname
//                        reboot swapoff; prints "ok" or errno name
//   exit N               exit with status N
//   ns                   "TYPE LINK" per namespace of /proc/self/ns
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *errname(int e) {
  switch (e) {
    case 0: return "ok";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case E2BIG: return "E2BIG";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL";
    case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS";
    case ENOSYS: return "ENOSYS";
    case ENOTSUP: return "ENOTSUP";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EDQUOT: return "EDQUOT";
  }
  static char buf[32];
  snprintf(buf, sizeof buf, "E%d", e);
  return buf;
}

static int say(const char *s) { printf("%s\n", s); fflush(stdout); return 0; }
static int result(int rc) { return say(errname(rc < 0 ? errno : 0)); }

static int status_field(const char *prefix, int all) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return say(errname(errno)), 1;
  char line[512], want[64];
  snprintf(want, sizeof want, all ? "%s" : "%s:", prefix);  // exact field unless listing a family
  size_t n = strlen(want);
  int found = 0;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, want, n) != 0) continue;
    found = 1;
    if (all) fputs(line, stdout);
    else {
      char *v = line + n;
      while (*v == ' ' || *v == '\t') v++;
      fputs(v, stdout);
    }
  }
  fclose(f);
  fflush(stdout);
  return found ? 0 : 1;
}

static void on_term(int sig) { _exit(128 + sig); }

static int memhog(long mb) {
  for (long i = 0; i < mb; i++) {
    char *p = malloc(1 << 20);
    if (!p) { printf("malloc failed at %ld MiB\n", i); fflush(stdout); return 1; }
    memset(p, (int)(i & 0xff) | 1, 1 << 20);
  }
  return say("done");
}

static int forkbomb(int n) {
  pid_t *kids = calloc(n, sizeof *kids);
  int ok = 0, err = 0;
  for (int i = 0; i < n; i++) {
    pid_t p = fork();
    if (p == 0) { for (;;) pause(); }
    if (p < 0) { if (!err) err = errno; continue; }
    kids[ok++] = p;
  }
  printf("forked %d %s\n", ok, err ? errname(err) : "none");
  fflush(stdout);
  for (int i = 0; i < ok; i++) kill(kids[i], SIGKILL);
  for (int i = 0; i < ok; i++) waitpid(kids[i], NULL, 0);
  return 0;
}

static const struct { const char *name; int res; } rlims[] = {
  {"CPU", RLIMIT_CPU}, {"FSIZE", RLIMIT_FSIZE}, {"DATA", RLIMIT_DATA}, {"STACK", RLIMIT_STACK},
  {"CORE", RLIMIT_CORE}, {"RSS", RLIMIT_RSS}, {"NPROC", RLIMIT_NPROC}, {"NOFILE", RLIMIT_NOFILE},
  {"MEMLOCK", RLIMIT_MEMLOCK}, {"AS", RLIMIT_AS}, {"LOCKS", RLIMIT_LOCKS},
  {"SIGPENDING", RLIMIT_SIGPENDING}, {"MSGQUEUE", RLIMIT_MSGQUEUE}, {"NICE", RLIMIT_NICE},
  {"RTPRIO", RLIMIT_RTPRIO}, {"RTTIME", RLIMIT_RTTIME},
};

static void prlim(rlim_t v) {
  if (v == RLIM_INFINITY) printf("unlimited"); else printf("%llu", (unsigned long long)v);
}

static int rlimit(const char *name) {
  if (strncmp(name, "RLIMIT_", 7) == 0) name += 7;
  for (size_t i = 0; i < sizeof rlims / sizeof rlims[0]; i++) {
    if (strcasecmp(name, rlims[i].name) != 0) continue;
    struct rlimit rl;
    if (getrlimit(rlims[i].res, &rl) < 0) return result(-1);
    prlim(rl.rlim_cur); printf(" "); prlim(rl.rlim_max); printf("\n");
    return fflush(stdout);
  }
  fprintf(stderr, "unknown rlimit %s\n", name);
  return 2;
}

static int syscall_errno(const char *name) {
  long rc;
  if (!strcmp(name, "mkdir")) rc = syscall(SYS_mkdir, "/tmp/.probe-mkdir", 0755);
  else if (!strcmp(name, "mkdirat")) rc = syscall(SYS_mkdirat, AT_FDCWD, "/tmp/.probe-mkdirat", 0755);
  else if (!strcmp(name, "personality")) rc = syscall(SYS_personality, 0xffffffff);
  else if (!strcmp(name, "unshare")) rc = syscall(SYS_unshare, CLONE_NEWUTS);
  else if (!strcmp(name, "chroot")) rc = syscall(SYS_chroot, "/");
  else if (!strcmp(name, "getpid")) rc = syscall(SYS_getpid);
  else if (!strcmp(name, "sethostname")) rc = syscall(SYS_sethostname, "probe", 5);
  else if (!strcmp(name, "reboot")) rc = syscall(SYS_reboot, 0, 0, 0, NULL);  // bad magic: EINVAL if allowed
  else if (!strcmp(name, "swapoff")) rc = syscall(SYS_swapoff, "/nonexistent");
  else { fprintf(stderr, "unknown syscall %s\n", name); return 2; }
  return result(rc < 0 ? -1 : 0);
}

static int ns(void) {
  DIR *d = opendir("/proc/self/ns");
  if (!d) return result(-1);
  struct dirent *e;
  char path[300], link[256];
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "/proc/self/ns/%s", e->d_name);
    ssize_t n = readlink(path, link, sizeof link - 1);
    if (n < 0) continue;
    link[n] = 0;
    printf("%s %s\n", e->d_name, link);
  }
  closedir(d);
  return fflush(stdout);
}

static int usage(void) {
  fprintf(stderr, "usage: probe memhog MB | forkbomb N | mkdir PATH | mount-tmpfs PATH | write PATH [TEXT] |"
                  " caps | id | isatty | sleep | pause | rlimit NAME | umask | nnp | seccomp |"
                  " syscall-errno NAME | exit N | ns\n");
  return 2;
}

int main(int argc, char **argv) {
  if (argc < 2) return usage();
  const char *cmd = argv[1], *arg = argc > 2 ? argv[2] : NULL;
  if (!strcmp(cmd, "memhog") && arg) return memhog(atol(arg));
  if (!strcmp(cmd, "forkbomb") && arg) return forkbomb(atoi(arg));
  if (!strcmp(cmd, "mkdir") && arg) return result(mkdir(arg, 0755));
  if (!strcmp(cmd, "mount-tmpfs") && arg) return result(mount("tmpfs", arg, "tmpfs", 0, "size=1m"));
  if (!strcmp(cmd, "write") && arg) {
    int fd = open(arg, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return result(-1);
    const char *text = argc > 3 ? argv[3] : "probe\n";
    ssize_t n = write(fd, text, strlen(text));
    int e = n < 0 ? errno : 0;
    if (close(fd) < 0 && !e) e = errno;
    return say(errname(e));
  }
  if (!strcmp(cmd, "caps")) return status_field("Cap", 1);
  if (!strcmp(cmd, "id")) {
    gid_t g[256];
    int n = getgroups(256, g);
    printf("uid=%d gid=%d groups=", (int)getuid(), (int)getgid());
    for (int i = 0; i < n; i++) printf(i ? ",%d" : "%d", (int)g[i]);
    printf("\n");
    return fflush(stdout);
  }
  if (!strcmp(cmd, "isatty")) {
    printf("stdin=%d stdout=%d\n", isatty(0), isatty(1));
    return fflush(stdout);
  }
  if (!strcmp(cmd, "sleep") || !strcmp(cmd, "pause")) {
    if (!strcmp(cmd, "sleep")) { signal(SIGTERM, on_term); signal(SIGINT, on_term); }
    for (;;) pause();
  }
  if (!strcmp(cmd, "rlimit") && arg) return rlimit(arg);
  if (!strcmp(cmd, "umask")) {
    mode_t m = umask(0);
    umask(m);
    printf("%04o\n", (unsigned)m);
    return fflush(stdout);
  }
  if (!strcmp(cmd, "nnp")) return status_field("NoNewPrivs", 0);
  if (!strcmp(cmd, "seccomp")) return status_field("Seccomp", 0);
  if (!strcmp(cmd, "syscall-errno") && arg) return syscall_errno(arg);
  if (!strcmp(cmd, "exit") && arg) return atoi(arg);
  if (!strcmp(cmd, "ns")) return ns();
  return usage();
}
