// tsrun-supervisor: the per-container supervisor of a detached container (`tsrun run -d`).
// usage: tsrun-supervisor --id ID --dir DIR --root ROOT --tsrun CMD [--node NODE] [--log FILE]
//        [--restart no|always|unless-stopped|on-failure[:N]] [--rm] [--tty]
// Fd 3 (a pipe to the CLI) gets one line: `ok <init pid>` or `error <message>` (then exit 125).
// It detaches, becomes a child subreaper, runs `tsrun create` + `tsrun start`, reaps the
// container's init, writes its output as docker json-file lines, writes DIR/exit.json when init
// exits, deletes the runtime state and restarts it as the policy says. Errors: DIR/supervisor.log.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_LOG 16384
enum { R_NO, R_ALWAYS, R_UNLESS_STOPPED, R_ON_FAILURE };

static const char *id, *dir, *root, *tsrun, *node, *logpath;
static int suppid_written, policy = R_NO, max_restarts = -1, opt_rm, opt_tty;
static int outfd = -1, errlog = -1, logfd = -1, sigfd = -1, consock = -1;
static int cfd[2] = { -1, -1 };          // container output: stdout, stderr (tty: master in [0])
static pid_t init_pid;                    // 0: no container process known
static int init_status, init_done, terminating;
static const char *p_pidfile, *p_sock, *p_suppid, *p_suptmp, *p_exit, *p_exittmp, *p_stopped, *p_errlog;
static char arena[8192], capbuf[16384];  // arena: the paths, packed (few pages touched)
static size_t arena_used;
static size_t caplen;
static struct { char buf[LINE_MAX_LOG]; size_t len; } line[2];
static char jbuf[LINE_MAX_LOG * 6 + 256], iobuf[8192];

static void fmt_time(char *out, size_t n) {
  struct timespec ts; struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -1;
    p += w; n -= (size_t)w;
  }
  return 0;
}

// One line in DIR/supervisor.log: "<time> <operation>: <strerror>" (err 0: no strerror).
static void logerr(int err, const char *fmt, ...) {
  char msg[1024], t[96];
  va_list ap;
  if (errlog < 0) {
    if (!p_errlog) return;
    errlog = open(p_errlog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (errlog < 0) return;
  }
  fmt_time(t, sizeof t);
  int k = snprintf(msg, sizeof msg, "%s ", t);
  va_start(ap, fmt);
  k += vsnprintf(msg + k, sizeof msg - k, fmt, ap);
  va_end(ap);
  if (k > (int)sizeof msg - 200) k = sizeof msg - 200;
  k += snprintf(msg + k, sizeof msg - k, err ? ": %s\n" : "\n", strerror(err));
  write_all(errlog, msg, (size_t)k);
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// a + b + c in the arena (NULL when full)
static const char *cat3(const char *a, const char *b, const char *c) {
  size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
  if (arena_used + n > sizeof arena) return NULL;
  char *p = arena + arena_used;
  strcpy(p, a); strcat(p, b); strcat(p, c);
  arena_used += n;
  return p;
}

// --- the json-file log ---------------------------------------------------------------------
static size_t utf8_len(const unsigned char *s, size_t n) {  // length of a valid sequence, 0 if invalid
  unsigned c = s[0]; size_t k; unsigned cp;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) { k = 2; cp = c & 0x1f; }
  else if (c >= 0xe0 && c <= 0xef) { k = 3; cp = c & 0x0f; }
  else if (c >= 0xf0 && c <= 0xf4) { k = 4; cp = c & 0x07; }
  else return 0;
  if (n < k) return 0;
  for (size_t i = 1; i < k; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (s[i] & 0x3f);
  }
  if ((k == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (k == 4 && (cp < 0x10000 || cp > 0x10ffff))) return 0;
  return k;
}

static void emit(int stream, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  char *o = jbuf;
  o += sprintf(o, "{\"log\":\"");
  for (size_t i = 0; i < n;) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') { *o++ = '\\'; *o++ = (char)c; i++; continue; }
    if (c == '\n') { *o++ = '\\'; *o++ = 'n'; i++; continue; }
    if (c == '\r') { *o++ = '\\'; *o++ = 'r'; i++; continue; }
    if (c == '\t') { *o++ = '\\'; *o++ = 't'; i++; continue; }
    if (c < 0x20) { memcpy(o, "\\u00", 4); o[4] = hex[c >> 4]; o[5] = hex[c & 15]; o += 6; i++; continue; }
    size_t k = utf8_len((const unsigned char *)s + i, n - i);
    if (!k) { memcpy(o, "\\ufffd", 6); o += 6; i++; continue; }
    memcpy(o, s + i, k); o += k; i += k;
  }
  o += sprintf(o, "\",\"stream\":\"%s\",\"time\":\"", stream ? "stderr" : "stdout");
  fmt_time(o, 96);
  o += strlen(o);
  memcpy(o, "\"}\n", 3); o += 3;
  if (write_all(logfd, jbuf, (size_t)(o - jbuf)) < 0) logerr(errno, "write %s", logpath);
}

static void take(int stream, const char *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    line[stream].buf[line[stream].len++] = p[i];
    if (p[i] == '\n' || line[stream].len == LINE_MAX_LOG) { emit(stream, line[stream].buf, line[stream].len); line[stream].len = 0; }
  }
}

static void flush_partial(void) {
  for (int s = 0; s < 2; s++) if (line[s].len) { emit(s, line[s].buf, line[s].len); line[s].len = 0; }
}

// Read what is there from container fd k (non-blocking); close it at EOF/EIO.
static void pump(int k) {
  for (;;) {
    ssize_t r = read(cfd[k], iobuf, sizeof iobuf);
    if (r > 0) { take(k, iobuf, (size_t)r); continue; }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN) return;
    if (r < 0 && errno != EIO) logerr(errno, "read container %s", k ? "stderr" : "stdout");
    close(cfd[k]); cfd[k] = -1;
    return;
  }
}

// --- children -------------------------------------------------------------------------------
// Reap children. While the container's init is not known (create), reap only `want`: the init
// could be among the others, and its status must not be lost.
static void reap(pid_t want, int *want_status, int *want_done) {
  int st; pid_t p;
  while ((p = waitpid(init_pid || !want ? -1 : want, &st, WNOHANG)) > 0) {
    if (p == want) { *want_status = st; *want_done = 1; }
    else if (init_pid && p == init_pid) { init_status = st; init_done = 1; }
  }
  if (p < 0 && errno != ECHILD) logerr(errno, "waitpid");
}

static void on_signal(void) {
  struct signalfd_siginfo si;
  while (read(sigfd, &si, sizeof si) == sizeof si) {
    if (si.ssi_signo != SIGTERM) continue;
    terminating = 1;
    if (init_pid && !init_done && kill(init_pid, SIGTERM) < 0) logerr(errno, "kill %d SIGTERM", (int)init_pid);
  }
}

static void recv_console(void) {
  int c = accept4(consock, NULL, NULL, SOCK_CLOEXEC);
  if (c < 0) { logerr(errno, "accept console socket"); return; }
  char data[256];
  union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int) * 4)]; } cm;
  struct iovec iov = { data, sizeof data };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof cm.buf };
  if (recvmsg(c, &msg, MSG_CMSG_CLOEXEC) < 0) logerr(errno, "recvmsg console socket");
  else for (struct cmsghdr *h = CMSG_FIRSTHDR(&msg); h; h = CMSG_NXTHDR(&msg, h)) {
    if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS) continue;
    int n = (int)((h->cmsg_len - CMSG_LEN(0)) / sizeof(int)), fd;
    for (int i = 0; i < n; i++) {
      memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof fd);
      if (cfd[0] < 0) { cfd[0] = fd; if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0) logerr(errno, "fcntl console"); }
      else close(fd);
    }
  }
  close(c);
}

// Wait for pid, serving the signal fd, the container fds, the console socket and `cap` (read into
// capbuf). The container fds are read only when `logging` (before start, they carry tsrun's output).
static int wait_for(pid_t pid, int cap, int logging) {
  int st = 0, done = 0;
  caplen = 0;
  for (;;) {
    struct pollfd p[5] = { { sigfd, POLLIN, 0 }, { cap, POLLIN, 0 }, { consock, POLLIN, 0 },
                           { logging ? cfd[0] : -1, POLLIN, 0 }, { logging ? cfd[1] : -1, POLLIN, 0 } };
    reap(pid, &st, &done);
    if (done) break;
    if (poll(p, 5, 1000) < 0) { if (errno != EINTR) logerr(errno, "poll"); continue; }
    if (p[0].revents) on_signal();
    if (p[2].revents) recv_console();
    for (int k = 0; k < 2; k++) if (p[3 + k].revents) pump(k);
    if (p[1].revents) {
      ssize_t r = read(cap, capbuf + caplen, sizeof capbuf - 1 - caplen);
      if (r > 0) caplen += (size_t)r;
      else if (r == 0) cap = -1;
      if (caplen == sizeof capbuf - 1) while (read(cap, iobuf, sizeof iobuf) > 0) ;  // full: discard
    }
  }
  if (cap >= 0) {  // what is left in the pipe (non-blocking)
    ssize_t r;
    while (caplen < sizeof capbuf - 1 && (r = read(cap, capbuf + caplen, sizeof capbuf - 1 - caplen)) > 0) caplen += (size_t)r;
  }
  capbuf[caplen] = 0;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// Run `tsrun --root ROOT <args...>` with fd 0 = /dev/null and fds 1, 2 as given (-1: /dev/null).
// Returns its exit code (128+N for a signal); what it writes to `cap` is in capbuf.
static int tsrun_cmd(int fd1, int fd2, int cap, int logging, const char *a0, ...) {
  const char *argv[16];
  int n = 0;
  va_list ap;
  if (node) argv[n++] = node;
  argv[n++] = tsrun; argv[n++] = "--root"; argv[n++] = root; argv[n++] = a0;
  va_start(ap, a0);
  while ((argv[n] = va_arg(ap, const char *)) != NULL && n < 15) n++;
  va_end(ap);
  argv[n] = NULL;
  pid_t pid = fork();
  if (pid < 0) { logerr(errno, "fork %s", a0); return 125; }
  if (pid == 0) {
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    signal(SIGPIPE, SIG_DFL); signal(SIGHUP, SIG_DFL);
    int null = open("/dev/null", O_RDWR);
    if (null < 0 || dup2(null, 0) < 0 || dup2(fd1 >= 0 ? fd1 : null, 1) < 0 || dup2(fd2 >= 0 ? fd2 : null, 2) < 0) _exit(125);
    execvp(argv[0], (char *const *)argv);
    dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  int code = wait_for(pid, cap, logging);
  if (code != 0 && (!strcmp(a0, "delete") || !strcmp(a0, "rm")))  // others: the caller reports
    logerr(0, "tsrun %s exited with %d: %.*s", a0, code, (int)strcspn(capbuf, "\n"), capbuf);
  return code;
}

static void one_line(char *s) {  // capbuf as one line: newlines become spaces, no trailing space
  for (char *p = s; *p; p++) if (*p == '\n' || *p == '\r') *p = ' ';
  size_t n = strlen(s);
  while (n && s[n - 1] == ' ') s[--n] = 0;
}

// A pipe whose read end (only) is non-blocking.
static int mkpipe(int p[2]) {
  if (pipe2(p, O_CLOEXEC) < 0) { logerr(errno, "pipe"); return -1; }
  if (fcntl(p[0], F_SETFL, O_NONBLOCK) < 0) logerr(errno, "fcntl O_NONBLOCK");
  return 0;
}

static int delete_force(void) {
  int pp[2];
  if (mkpipe(pp) < 0) return -1;
  int code = tsrun_cmd(-1, pp[1], pp[0], 1, "delete", "--force", id, NULL);
  close(pp[0]); close(pp[1]);
  return code;
}

// The one line for the CLI on fd 3: "<word> <msg>\n".
static void outcome(const char *word, const char *msg) {
  struct iovec v[4] = { { (void *)word, strlen(word) }, { " ", 1 }, { (void *)msg, strlen(msg) }, { "\n", 1 } };
  if (outfd < 0) return;
  if (writev(outfd, v, 4) < 0) logerr(errno, "write outcome");
  close(outfd);
  outfd = -1;
}

// create + start. Returns 0 (init_pid set) or an exit code; the error message is in capbuf.
static int start_container(void) {
  int out[2] = { -1, -1 }, err[2] = { -1, -1 }, cap[2];
  const char *pidfile = p_pidfile, *sock = p_sock;
  init_pid = 0; init_done = 0;
  if (unlink(pidfile) < 0 && errno != ENOENT) logerr(errno, "unlink %s", pidfile);
  if (mkpipe(cap) < 0) { snprintf(capbuf, sizeof capbuf, "pipe: %s", strerror(errno)); return 125; }
  int code;
  if (opt_tty) {
    code = tsrun_cmd(-1, cap[1], cap[0], 0, "create", "--bundle", dir, "--pid-file", pidfile, "--console-socket", sock, id, NULL);
    if (code == 0 && cfd[0] < 0) { snprintf(capbuf, sizeof capbuf, "no pty master received on %s", sock); code = 125; }
  } else {
    if (mkpipe(out) < 0 || mkpipe(err) < 0) {
      snprintf(capbuf, sizeof capbuf, "pipe: %s", strerror(errno));
      if (out[0] >= 0) { close(out[0]); close(out[1]); }
      code = 125;
    } else {
      // its stderr is the container's: what is in it before start is tsrun's (init is blocked)
      code = tsrun_cmd(out[1], err[1], err[0], 0, "create", "--bundle", dir, "--pid-file", pidfile, id, NULL);
      cfd[0] = out[0]; cfd[1] = err[0];
      close(out[1]); close(err[1]);
      if (code == 0 && caplen) { one_line(capbuf); logerr(0, "tsrun create: %s", capbuf); }
      caplen = 0;
    }
  }
  if (code == 0) {
    char b[32] = { 0 };
    int fd = open(pidfile, O_RDONLY | O_CLOEXEC), st;
    pid_t r;
    if (fd < 0 || read(fd, b, sizeof b - 1) <= 0) { snprintf(capbuf, sizeof capbuf, "read %s: %s", pidfile, strerror(errno)); code = 125; }
    else if ((init_pid = atoi(b)) <= 0) { snprintf(capbuf, sizeof capbuf, "bad pid in %s", pidfile); init_pid = 0; code = 125; }
    else if ((r = waitpid(init_pid, &st, WNOHANG)) < 0) {  // it must be our child now (subreaper)
      snprintf(capbuf, sizeof capbuf, "container init %d is not a child of the supervisor: %s", (int)init_pid, strerror(errno));
      init_pid = 0; code = 125;
    } else if (r == init_pid) { init_status = st; init_done = 1; }  // it exited already
    if (fd >= 0) close(fd);
  }
  if (code == 0) {
    code = tsrun_cmd(-1, cap[1], cap[0], 1, "start", id, NULL);
    if (terminating && init_pid && !init_done) kill(init_pid, SIGTERM);
  }
  close(cap[0]); close(cap[1]);
  one_line(capbuf);
  if (code != 0 && !capbuf[0]) snprintf(capbuf, sizeof capbuf, "tsrun create/start exited with status %d", code);
  return code;
}

static void write_exit(int code, int oom, int restarts) {
  char t[96], buf[256];
  const char *tmp = p_exittmp, *fin = p_exit;
  fmt_time(t, sizeof t);
  int n = snprintf(buf, sizeof buf, "{\"exitCode\":%d,\"finishedAt\":\"%s\",\"oomKilled\":%s,\"restartCount\":%d}\n",
                   code, t, oom ? "true" : "false", restarts);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) { logerr(errno, "open %s", tmp); return; }
  if (write_all(fd, buf, (size_t)n) < 0) logerr(errno, "write %s", tmp);
  if (close(fd) < 0) logerr(errno, "close %s", tmp);
  if (rename(tmp, fin) < 0) logerr(errno, "rename %s", fin);
}

static int stopped_marker(void) {
  return access(p_stopped, F_OK) == 0;
}

static void close_container_fds(void) {
  for (int k = 0; k < 2; k++) if (cfd[k] >= 0) { pump(k); if (cfd[k] >= 0) { close(cfd[k]); cfd[k] = -1; } }
  flush_partial();
}

// p made absolute (we chdir to /); a bare command name (no '/') stays for the PATH lookup.
static const char *absolute(const char *p, int is_cmd) {
  char cwd[2048];
  const char *r;
  if (!p || p[0] == '/' || (is_cmd && !strchr(p, '/'))) return p;
  if (!getcwd(cwd, sizeof cwd) || !(r = cat3(cwd, "/", p))) return p;
  return r;
}

// Before the container exists: `error tsrun-supervisor: WHAT[: strerror(err)]` on fd 3, exit 125.
static void fail(int err, const char *what) {
  snprintf(capbuf, sizeof capbuf, err ? "%s: %s" : "%s", what, strerror(err));
  logerr(0, "%s", capbuf);
  outcome("error tsrun-supervisor:", capbuf);
  if (suppid_written) unlink(p_suppid);
  _exit(125);
}

int main(int argc, char **argv) {
  outfd = fcntl(3, F_GETFD) < 0 ? -1 : 3;  // before anything could take fd 3
  for (int fd; (fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2;) ;
  syscall(SYS_close_range, 4U, ~0U, 0U);  // whatever the CLI leaked (fd 3..: the /dev/null above, too)
  if (outfd >= 0 && fcntl(outfd, F_SETFD, FD_CLOEXEC) < 0) outfd = -1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--rm")) opt_rm = 1;
    else if (!strcmp(a, "--tty")) opt_tty = 1;
    else if (!v) fail(0, cat3("missing value of ", a, ""));
    else if (!strcmp(a, "--id")) id = v, i++;
    else if (!strcmp(a, "--dir")) dir = v, i++;
    else if (!strcmp(a, "--root")) root = v, i++;
    else if (!strcmp(a, "--tsrun")) tsrun = v, i++;
    else if (!strcmp(a, "--node")) node = v, i++;
    else if (!strcmp(a, "--log")) logpath = v, i++;
    else if (!strcmp(a, "--restart")) {
      i++;
      if (!strcmp(v, "no")) policy = R_NO;
      else if (!strcmp(v, "always")) policy = R_ALWAYS;
      else if (!strcmp(v, "unless-stopped")) policy = R_UNLESS_STOPPED;
      else if (!strncmp(v, "on-failure", 10) && (v[10] == 0 || (v[10] == ':' && v[11] >= '0' && v[11] <= '9'))) {
        policy = R_ON_FAILURE;
        if (v[10]) max_restarts = atoi(v + 11);
      } else fail(0, "bad --restart (no|always|unless-stopped|on-failure[:N])");
    } else fail(0, cat3("unknown option ", a, ""));
  }
  if (!id || !dir || !root || !tsrun) fail(0, "--id, --dir, --root and --tsrun are required");
  dir = absolute(dir, 0); root = absolute(root, 0); logpath = absolute(logpath, 0);
  tsrun = absolute(tsrun, 1); node = absolute(node, 1);
  if (!logpath) logpath = cat3(dir, "/", cat3(id, "-json.log", ""));
  p_pidfile = cat3(dir, "/", "init.pid"); p_sock = cat3(dir, "/", "console.sock");
  p_suppid = cat3(dir, "/", "supervisor.pid"); p_suptmp = cat3(dir, "/", ".supervisor.pid.tmp");
  p_exit = cat3(dir, "/", "exit.json"); p_exittmp = cat3(dir, "/", ".exit.json.tmp");
  p_stopped = cat3(dir, "/", "stopped"); p_errlog = cat3(dir, "/", "supervisor.log");
  if (!p_errlog || !logpath) fail(0, "paths too long");

  signal(SIGHUP, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  pid_t p = fork();
  if (p < 0) fail(errno, "fork");
  if (p > 0) _exit(0);
  if (setsid() < 0) logerr(errno, "setsid");
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) fail(errno, "prctl PR_SET_CHILD_SUBREAPER");
  if (chdir("/") < 0) logerr(errno, "chdir /");
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGTERM);
  if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 || (sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
    fail(errno, "signalfd");
  const char *tmp = p_suptmp, *fin = p_suppid, *sockpath = p_sock;
  char b[32];
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int n = snprintf(b, sizeof b, "%d", (int)getpid());
  if (fd < 0 || write_all(fd, b, (size_t)n) < 0 || close(fd) < 0 || rename(tmp, fin) < 0) {
    fail(errno, fin);
  }
  suppid_written = 1;
  if ((logfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640)) < 0) fail(errno, logpath);
  if (opt_tty) {
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if (strlen(sockpath) >= sizeof addr.sun_path) fail(0, "console socket path too long");
    strcpy(addr.sun_path, sockpath);
    unlink(sockpath);
    if ((consock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        bind(consock, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(consock, 4) < 0) fail(errno, sockpath);
  }

  int restarts = 0, first = 1, dummy;
  long long delay = 100;
  for (;;) {
    int code = start_container(), oom = 0;
    long long started = now_ms();
    if (code != 0) {
      logerr(0, "start container: %s", capbuf);
      if (init_pid && !init_done && kill(init_pid, SIGKILL) < 0) logerr(errno, "kill %d", (int)init_pid);
      init_pid = 0;
      if (first) {
        outcome("error", capbuf);
        delete_force();
        close_container_fds();
        if (opt_tty) unlink(sockpath);
        unlink(fin);
        return 125;
      }
    } else {
      if (first) { snprintf(b, sizeof b, "%d", (int)init_pid); outcome("ok", b); }
      while (!init_done) {
        struct pollfd pf[4] = { { sigfd, POLLIN, 0 }, { cfd[0], POLLIN, 0 }, { cfd[1], POLLIN, 0 }, { consock, POLLIN, 0 } };
        if (poll(pf, 4, -1) < 0) { if (errno != EINTR) logerr(errno, "poll"); continue; }
        if (pf[0].revents) { on_signal(); reap(0, &dummy, &dummy); }
        for (int k = 0; k < 2; k++) if (pf[1 + k].revents) pump(k);
        if (pf[3].revents) recv_console();  // a second console: not expected; close it
      }
      code = WIFEXITED(init_status) ? WEXITSTATUS(init_status) : 128 + WTERMSIG(init_status);
      for (int k = 0; k < 2; k++) if (cfd[k] >= 0) pump(k);
      init_pid = 0;
      int pp[2];
      if (mkpipe(pp) == 0) {
        if (tsrun_cmd(pp[1], -1, pp[0], 1, "state", id, NULL) == 0)
          oom = strstr(capbuf, "\"oomKilled\": true") || strstr(capbuf, "\"oomKilled\":true");
        else logerr(0, "tsrun state exited with an error");
        close(pp[0]); close(pp[1]);
      }
    }
    first = 0;
    int again = !terminating && !stopped_marker() &&
                (policy == R_ALWAYS || policy == R_UNLESS_STOPPED ||
                 (policy == R_ON_FAILURE && code != 0 && (max_restarts < 0 || restarts < max_restarts)));
    if (again) restarts++;
    write_exit(code, oom, restarts);
    delete_force();
    close_container_fds();
    if (!again) break;
    if (now_ms() - started >= 10000) delay = 100;
    long long until = now_ms() + delay;
    delay = delay * 2 > 10000 ? 10000 : delay * 2;
    while (!terminating && now_ms() < until) {
      struct pollfd pf = { sigfd, POLLIN, 0 };
      if (poll(&pf, 1, (int)(until - now_ms())) > 0) { on_signal(); reap(0, &dummy, &dummy); }
    }
    if (terminating || stopped_marker()) { write_exit(code, oom, --restarts); break; }
  }
  if (opt_tty) unlink(sockpath);
  if (unlink(fin) < 0) logerr(errno, "unlink %s", fin);
  if (opt_rm) {
    close(logfd);
    int pp[2];
    if (mkpipe(pp) == 0) tsrun_cmd(-1, pp[1], pp[0], 1, "rm", "-f", id, NULL);
  } else {
    // The container's network attachment (engine/network) lives as long as this supervisor: the
    // container stopped for good, so its veth, namespace, address and port rules go now.
    char ep[4096];
    int pp[2];
    snprintf(ep, sizeof ep, "%s/networks/endpoints/%s.json", root, id);
    if (access(ep, F_OK) == 0 && mkpipe(pp) == 0) {
      tsrun_cmd(-1, pp[1], pp[0], 1, "network", "release", id, NULL);
      close(pp[0]); close(pp[1]);
    }
  }
  return 0;
}
