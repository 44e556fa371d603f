// tsrun-supervisor: the per-container supervisor of a detached container (`tsrun run -d`).
// usage: tsrun-supervisor --id ID --dir DIR --root ROOT --tsrun CMD [--node NODE] [--log FILE]
//        [--log-max-size BYTES [--log-max-file N]] [--health-interval MS]
//        [--restart no|always|unless-stopped|on-failure[:N]] [--rm] [--tty] [--stdin] [--attach-fd N]
// Fd 3 (a pipe to the CLI) gets one line: `ok <init pid>` or `error <message>` (then exit 125).
// It detaches, becomes a child subreaper, runs `tsrun create`, starts the init itself (the byte in
// ROOT/oci/ID/exec.fifo, as `tsrun start` reads it), reaps the
// container's init, writes its output as docker json-file lines, writes DIR/exit.json when init
// exits, deletes the runtime state and restarts it as the policy says. Errors: DIR/supervisor.log.
//
// Attach (`tsrun attach`, `start -a`): it listens on DIR/attach.sock (and --attach-fd N is a client
// connected already, so that nothing of the output is missed). --stdin: the container's stdin is a
// pipe the supervisor holds (with --tty, the pty master). Both directions carry frames
// [type u8][0 0 0][length u32 big-endian][data]:
//   to the client:   1 stdout, 2 stderr (a tty: all 1), 3 the container exited (data: code u32);
//                    then the connection closes. A client that cannot keep up is dropped.
//   from the client: 0 stdin data, 1 close stdin (not a tty), 2 window size (rows u16, cols u16).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
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
static int suppid_written, policy = R_NO, max_restarts = -1, opt_rm, opt_tty, opt_stdin;
static int outfd = -1, errlog = -1, logfd = -1, sigfd = -1, consock = -1, attsock = -1;
static int sin_fd = -1, sin_close;       // the stdin pipe's write end (not a tty); close it once flushed
static int conpath = -1;                 // O_PATH fd of DIR/console.sock: fd 3 of `tsrun create`
static int cfd[2] = { -1, -1 };          // container output: stdout, stderr (tty: master in [0])
static pid_t init_pid;                    // 0: no container process known
static int init_status, init_done, terminating;
static const char *p_events, *p_events_old;
static const char *p_pidfile, *p_sock, *p_suppid, *p_suptmp, *p_exit, *p_exittmp, *p_stopped, *p_errlog, *p_fifo;
static char arena[8192], capbuf[16384];  // arena: the paths, packed (few pages touched)
static size_t arena_used;
static size_t caplen;
static struct { char buf[LINE_MAX_LOG]; size_t len; } line[2];
#define JFLUSH 32768  // encoded lines are written in batches of about this much (and after each read)
static char jbuf[JFLUSH + LINE_MAX_LOG * 6 + 256], iobuf[8192];
static size_t jlen;  // encoded lines in jbuf, not written yet
#define MAX_CLIENTS 8
static struct client { int fd, hlen, type, plen; unsigned left; unsigned char hdr[8], pl[4]; } cl[MAX_CLIENTS];
static char pend[8192];                   // stdin the container did not take yet (clients wait)
static size_t pendlen, pendoff;
static unsigned short ws_rows, ws_cols;   // the last window size a client sent

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

// --log-opt max-size / max-file (docker's json-file): past max_size bytes, FILE.(k-1) becomes FILE.k,
// FILE becomes FILE.1 and a new FILE starts; with max_file 1 FILE starts over.
static long long log_max_size, log_size;
static long long health_interval;  // ms between `tsrun container healthcheck ID` runs; 0: no health check
static int log_max_file = 1;

static void rotate_log(void) {
  char from[4096], to[4096];
  for (int k = log_max_file - 1; k >= 1; k--) {
    if (k == 1) snprintf(from, sizeof from, "%s", logpath); else snprintf(from, sizeof from, "%s.%d", logpath, k - 1);
    snprintf(to, sizeof to, "%s.%d", logpath, k);
    if (rename(from, to) < 0 && errno != ENOENT) logerr(errno, "rename %s", from);
  }
  int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (log_max_file == 1 ? O_TRUNC : 0), 0640);
  if (fd < 0) { logerr(errno, "open %s", logpath); return; }
  if (dup3(fd, logfd, O_CLOEXEC) < 0) logerr(errno, "dup3 %s", logpath);
  close(fd);
  log_size = 0;
}

static void jflush(void) {
  if (jlen && write_all(logfd, jbuf, jlen) < 0) logerr(errno, "write %s", logpath);
  jlen = 0;
}

static void emit(int stream, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  char *o = jbuf + jlen;
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
  log_size += o - (jbuf + jlen);
  jlen = (size_t)(o - jbuf);
  if (log_max_size > 0 && log_size >= log_max_size) { jflush(); rotate_log(); }
  else if (jlen >= JFLUSH) jflush();
}

static void take(int stream, const char *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    line[stream].buf[line[stream].len++] = p[i];
    if (p[i] == '\n' || line[stream].len == LINE_MAX_LOG) { emit(stream, line[stream].buf, line[stream].len); line[stream].len = 0; }
  }
  jflush();
}

static void flush_partial(void) {
  for (int s = 0; s < 2; s++) if (line[s].len) { emit(s, line[s].buf, line[s].len); line[s].len = 0; }
  jflush();
}

// --- attach clients -------------------------------------------------------------------------
static void drop_client(int i) { close(cl[i].fd); cl[i].fd = -1; }

static void broadcast(int type, const void *p, size_t n) {
  unsigned char h[8] = { (unsigned char)type, 0, 0, 0, (unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8), (unsigned char)n };
  for (int i = 0; i < MAX_CLIENTS; i++) {
    if (cl[i].fd < 0) continue;
    struct iovec v[2] = { { h, 8 }, { (void *)p, n } };
    ssize_t w;
    while ((w = writev(cl[i].fd, v, 2)) < 0 && errno == EINTR) ;
    if (w != (ssize_t)(n + 8)) drop_client(i);  // gone, or too slow (a partial frame): dropped
  }
}

static void accept_client(int fd) {  // fd: a connected socket; -1: accept one on attach.sock
  if (fd < 0 && (fd = accept4(attsock, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) < 0) return;
  for (int i = 0; i < MAX_CLIENTS; i++)
    if (cl[i].fd < 0) { memset(&cl[i], 0, sizeof cl[i]); cl[i].fd = fd; return; }
  close(fd);
}

static int stdin_fd(void) { return !opt_stdin ? -1 : opt_tty ? cfd[0] : sin_fd; }

static void close_stdin(void) {
  if (sin_fd >= 0) close(sin_fd);
  sin_fd = -1; sin_close = 0; pendlen = pendoff = 0;
}

static void apply_winsize(void) {
  struct winsize w = { .ws_row = ws_rows, .ws_col = ws_cols };
  if (opt_tty && cfd[0] >= 0 && ws_rows && ioctl(cfd[0], TIOCSWINSZ, &w) < 0) logerr(errno, "TIOCSWINSZ");
}

// Write p to the container's stdin; what it does not take now waits in pend.
static void stdin_write(const char *p, size_t n) {
  int fd = stdin_fd();
  if (fd < 0 || !n) return;
  while (n && !pendlen) {
    ssize_t w = write(fd, p, n);
    if (w > 0) { p += w; n -= (size_t)w; continue; }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN) break;
    if (!opt_tty) close_stdin();  // EPIPE: the container closed its stdin
    return;
  }
  if (n > sizeof pend - pendlen) n = sizeof pend - pendlen;
  memcpy(pend + pendlen, p, n); pendlen += n;
}

static void flush_pend(void) {
  int fd = stdin_fd();
  while (pendoff < pendlen && fd >= 0) {
    ssize_t w = write(fd, pend + pendoff, pendlen - pendoff);
    if (w > 0) { pendoff += (size_t)w; continue; }
    if (w < 0 && (errno == EINTR)) continue;
    if (w < 0 && errno == EAGAIN) return;
    break;
  }
  pendlen = pendoff = 0;
  if (sin_close) close_stdin();
}

static void frame_done(struct client *c) {
  if (c->type == 1 && !opt_tty && sin_fd >= 0) { if (pendlen) sin_close = 1; else close_stdin(); }
  if (c->type == 2 && c->plen == 4) { ws_rows = (unsigned short)(c->pl[0] << 8 | c->pl[1]); ws_cols = (unsigned short)(c->pl[2] << 8 | c->pl[3]); apply_winsize(); }
  c->hlen = 0; c->plen = 0;
}

static void client_input(int i) {
  struct client *c = &cl[i];
  ssize_t r = read(c->fd, iobuf, sizeof iobuf);
  if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (r <= 0) { drop_client(i); return; }
  for (size_t o = 0; o < (size_t)r;) {
    if (c->hlen < 8) {
      c->hdr[c->hlen++] = (unsigned char)iobuf[o++];
      if (c->hlen == 8) {
        c->type = c->hdr[0];
        c->left = (unsigned)c->hdr[4] << 24 | (unsigned)c->hdr[5] << 16 | (unsigned)c->hdr[6] << 8 | c->hdr[7];
        if (!c->left) frame_done(c);
      }
      continue;
    }
    size_t n = (size_t)r - o < c->left ? (size_t)r - o : c->left;
    if (c->type == 0) stdin_write(iobuf + o, n);
    else for (size_t k = 0; k < n; k++) if (c->plen < (int)sizeof c->pl) c->pl[c->plen++] = (unsigned char)iobuf[o + k];
    o += n; c->left -= (unsigned)n;
    if (!c->left) frame_done(c);
  }
}

// The container exited: its code to every client, then the clients go.
static void notify_exit(int code) {
  unsigned char b[4] = { (unsigned char)(code >> 24), (unsigned char)(code >> 16), (unsigned char)(code >> 8), (unsigned char)code };
  broadcast(3, b, 4);
  for (int i = 0; i < MAX_CLIENTS; i++) if (cl[i].fd >= 0) drop_client(i);
}

// A restart policy: no, always, unless-stopped, on-failure[:N]; -1 if it is none of them.
static int set_policy(const char *v) {
  if (!strcmp(v, "no")) policy = R_NO;
  else if (!strcmp(v, "always")) policy = R_ALWAYS;
  else if (!strcmp(v, "unless-stopped")) policy = R_UNLESS_STOPPED;
  else if (!strncmp(v, "on-failure", 10) && (v[10] == 0 || (v[10] == ':' && v[11] >= '0' && v[11] <= '9'))) {
    policy = R_ON_FAILURE;
    max_restarts = v[10] ? atoi(v + 11) : -1;
  } else return -1;
  return 0;
}

// `tsrun update --restart P` writes DIR/restart-policy: it holds from the next exit of the container.
static void reload_policy(void) {
  char path[4096], v[64];
  snprintf(path, sizeof path, "%s/restart-policy", dir);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = read(fd, v, sizeof v - 1);
  close(fd);
  if (n <= 0) return;
  v[n] = 0;
  v[strcspn(v, "\n")] = 0;
  if (set_policy(v) < 0) logerr(0, "%s: bad restart policy %s", path, v);
}

// Read what is there from container fd k (non-blocking); close it at EOF/EIO.
static void pump(int k) {
  for (;;) {
    ssize_t r = read(cfd[k], iobuf, sizeof iobuf);
    if (r > 0) { take(k, iobuf, (size_t)r); broadcast(k + 1, iobuf, (size_t)r); continue; }
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
      if (cfd[0] < 0) { cfd[0] = fd; if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0) logerr(errno, "fcntl console"); apply_winsize(); }
      else close(fd);
    }
  }
  close(c);
}

// One poll over what the supervisor serves: signals, the console socket, the container fds (only
// when `logging`: before start they carry tsrun's output), attach clients and the container's
// stdin; and `extra`, whose revents it returns.
static short serve(int extra, int logging, int timeout) {
  struct pollfd p[7 + MAX_CLIENTS] = { { sigfd, POLLIN, 0 }, { extra, POLLIN, 0 }, { consock, POLLIN, 0 },
    { logging ? cfd[0] : -1, POLLIN, 0 }, { logging ? cfd[1] : -1, POLLIN, 0 }, { attsock, POLLIN, 0 },
    { pendlen ? stdin_fd() : -1, POLLOUT, 0 } };
  // client input waits while the container's stdin is full, or (--stdin) not there yet
  int hold = pendlen || (opt_stdin && !init_pid);
  for (int i = 0; i < MAX_CLIENTS; i++) p[7 + i] = (struct pollfd){ hold ? -1 : cl[i].fd, POLLIN, 0 };
  if (poll(p, 7 + MAX_CLIENTS, timeout) < 0) { if (errno != EINTR) logerr(errno, "poll"); return 0; }
  if (p[0].revents) on_signal();
  if (p[2].revents) recv_console();
  for (int k = 0; k < 2; k++) if (p[3 + k].revents && cfd[k] >= 0) pump(k);
  if (p[5].revents) accept_client(-1);
  if (p[6].revents) flush_pend();
  for (int i = 0; i < MAX_CLIENTS; i++) if (p[7 + i].revents && cl[i].fd >= 0) client_input(i);
  return p[1].revents;
}

// Wait for pid, serving everything (see serve) and `cap` (read into capbuf).
static int wait_for(pid_t pid, int cap, int logging) {
  int st = 0, done = 0;
  caplen = 0;
  for (;;) {
    reap(pid, &st, &done);
    if (done) break;
    if (serve(cap, logging, 1000)) {
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

// Run `tsrun --root ROOT <args...>` with fds 0, 1, 2 as given (-1: /dev/null).
// Returns its exit code (128+N for a signal); what it writes to `cap` is in capbuf.
static int tsrun_cmd(int fd0, int fd1, int fd2, int cap, int logging, const char *a0, ...) {
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
    if (null < 0 || dup2(fd0 >= 0 ? fd0 : null, 0) < 0 || dup2(fd1 >= 0 ? fd1 : null, 1) < 0 || dup2(fd2 >= 0 ? fd2 : null, 2) < 0) _exit(125);
    if (conpath >= 0 && !strcmp(a0, "create") && (conpath == 3 ? fcntl(3, F_SETFD, 0) : dup2(conpath, 3)) < 0) _exit(125);
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
  int code = tsrun_cmd(-1, -1, pp[1], pp[0], 1, "delete", "--force", id, NULL);
  close(pp[0]); close(pp[1]);
  return code;
}

// After the init exited: `tsrun container exited ID [--release]` prints {"oomKilled":BOOL} (from the
// runtime's state), deletes the runtime state (--force) and, with --release, gives up the network
// attachment and unmounts the root filesystem. Returns whether the OOM killer struck.
static int released;
static int container_exited(int release) {
  int pp[2], oom = 0;
  if (mkpipe(pp) < 0) return 0;
  int code = tsrun_cmd(-1, pp[1], pp[1], pp[0], 1, "container", "exited", id, release ? "--release" : NULL, NULL);
  oom = strstr(capbuf, "\"oomKilled\":true") != NULL;
  if (code != 0) { one_line(capbuf); logerr(0, "tsrun container exited %s exited with %d: %s", id, code, capbuf); }
  close(pp[0]); close(pp[1]);
  return oom;
}

// The one line for the CLI on fd 3: "<word> <msg>\n".
static void outcome(const char *word, const char *msg) {
  struct iovec v[4] = { { (void *)word, strlen(word) }, { " ", 1 }, { (void *)msg, strlen(msg) }, { "\n", 1 } };
  if (outfd < 0) return;
  if (writev(outfd, v, 4) < 0) logerr(errno, "write outcome");
  close(outfd);
  outfd = -1;
}

// The runtime's `start` without a process (a Node start, ~40 ms, less per start and restart): read
// the byte the created init writes into ROOT/oci/ID/exec.fifo (it then execs) and remove the fifo,
// after which the runtime's state says "running". Waits while the init lives, as `tsrun start`
// does: it opens its end of the fifo when it is next scheduled. (The one other thing `tsrun start`
// does, poststart hooks, the engine's bundles never have.)
static int start_init(void) {
  int fd = open(p_fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) { snprintf(capbuf, sizeof capbuf, "open %s: %s", p_fifo, strerror(errno)); return 125; }
  char b;
  for (int i = 0;; i++) {
    ssize_t r = read(fd, &b, 1);
    if (r == 1) break;
    if (r < 0 && errno != EAGAIN && errno != EINTR) {
      snprintf(capbuf, sizeof capbuf, "read %s: %s", p_fifo, strerror(errno));
      close(fd);
      return 125;
    }
    if (!init_done) {
      int st;
      if (waitpid(init_pid, &st, WNOHANG) == init_pid) { init_status = st; init_done = 1; }
    }
    if (init_done) {  // it may have written its byte and then died: the byte stays while we hold the fifo
      if (read(fd, &b, 1) == 1) break;
      snprintf(capbuf, sizeof capbuf, "cannot start container %s: its init process exited before start", id);
      close(fd);
      return 1;
    }
    struct timespec ts = { 0, (long)(1 + (i >> 4 < 9 ? i >> 4 : 9)) * 1000000L };
    nanosleep(&ts, NULL);
  }
  close(fd);
  if (unlink(p_fifo) < 0 && errno != ENOENT) logerr(errno, "unlink %s", p_fifo);
  return 0;
}

// create + start. Returns 0 (init_pid set) or an exit code; the error message is in capbuf.
static int start_container(void) {
  int out[2] = { -1, -1 }, err[2] = { -1, -1 }, cap[2];
  const char *pidfile = p_pidfile, *sock = "/proc/self/fd/3";  // see conpath
  init_pid = 0; init_done = 0;
  if (unlink(pidfile) < 0 && errno != ENOENT) logerr(errno, "unlink %s", pidfile);
  if (mkpipe(cap) < 0) { snprintf(capbuf, sizeof capbuf, "pipe: %s", strerror(errno)); return 125; }
  int code;
  if (opt_tty) {
    code = tsrun_cmd(-1, -1, cap[1], cap[0], 0, "create", "--bundle", dir, "--pid-file", pidfile, "--console-socket", sock, id, NULL);
    if (code == 0 && cfd[0] < 0) { snprintf(capbuf, sizeof capbuf, "no pty master received on %s", p_sock); code = 125; }
  } else {
    int in[2] = { -1, -1 };
    close_stdin();
    if (mkpipe(out) < 0 || mkpipe(err) < 0 || (opt_stdin && pipe2(in, O_CLOEXEC) < 0)) {
      snprintf(capbuf, sizeof capbuf, "pipe: %s", strerror(errno));
      if (out[0] >= 0) { close(out[0]); close(out[1]); }
      if (err[0] >= 0) { close(err[0]); close(err[1]); }
      code = 125;
    } else {
      // its stderr is the container's: what is in it before start is tsrun's (init is blocked)
      code = tsrun_cmd(in[0], out[1], err[1], err[0], 0, "create", "--bundle", dir, "--pid-file", pidfile, id, NULL);
      // `tsrun create` (Node) may have made its stdio O_NONBLOCK, a flag of the pipe's write end
      // that the container shares (it clears it before execve too; this also covers a late write)
      for (int k = 0; k < 2; k++) {
        int w = k ? err[1] : out[1], fl = fcntl(w, F_GETFL);
        if (fl >= 0 && (fl & O_NONBLOCK) && fcntl(w, F_SETFL, fl & ~O_NONBLOCK) < 0) logerr(errno, "fcntl ~O_NONBLOCK");
      }
      cfd[0] = out[0]; cfd[1] = err[0];
      close(out[1]); close(err[1]);
      if (in[0] >= 0) {
        close(in[0]); sin_fd = in[1];
        if (fcntl(sin_fd, F_SETFL, O_NONBLOCK) < 0) logerr(errno, "fcntl stdin O_NONBLOCK");
      }
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
    code = start_init();
    if (terminating && init_pid && !init_done) kill(init_pid, SIGTERM);
  }
  close(cap[0]); close(cap[1]);
  one_line(capbuf);
  if (code != 0 && !capbuf[0]) snprintf(capbuf, sizeof capbuf, "tsrun create/start exited with status %d", code);
  return code;
}

// One line in ROOT/events.jsonl (docker's events; `tsrun events` adds the name and image).
// code < 0: no exitCode attribute. Past 1 MiB the file becomes events.jsonl.1, as the CLI does.
static void event(const char *action, int code) {
  char line[512], attrs[48] = "";
  struct timespec ts;
  struct stat st;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (code >= 0) snprintf(attrs, sizeof attrs, "\"exitCode\":\"%d\"", code);
  int n = snprintf(line, sizeof line, "{\"Type\":\"container\",\"Action\":\"%s\",\"Actor\":{\"ID\":\"%s\",\"Attributes\":{%s}},\"time\":%lld,\"timeNano\":%lld%09ld}\n",
                   action, id, attrs, (long long)ts.tv_sec, (long long)ts.tv_sec, ts.tv_nsec);
  int fd = open(p_events, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0 || n >= (int)sizeof line) { logerr(errno, "open %s", p_events); if (fd >= 0) close(fd); return; }
  if (write_all(fd, line, (size_t)n) < 0) logerr(errno, "write %s", p_events);
  if (fstat(fd, &st) == 0 && st.st_size > (1 << 20)) rename(p_events, p_events_old);
  close(fd);
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
  close_stdin();
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
  int attfd = -1;
  outfd = fcntl(3, F_GETFD) < 0 ? -1 : 3;  // before anything could take fd 3
  for (int i = 1; i + 1 < argc; i++) if (!strcmp(argv[i], "--attach-fd")) attfd = atoi(argv[i + 1]);
  if (attfd <= 3 || fcntl(attfd, F_GETFD) < 0) attfd = -1;
  for (int fd; (fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2;) ;
  // whatever the CLI leaked (fd 3..: the /dev/null above, too), but the attach client
  if (attfd < 0) syscall(SYS_close_range, 4U, ~0U, 0U);
  else { if (attfd > 4) syscall(SYS_close_range, 4U, (unsigned)attfd - 1, 0U); syscall(SYS_close_range, (unsigned)attfd + 1, ~0U, 0U); }
  if (outfd >= 0 && fcntl(outfd, F_SETFD, FD_CLOEXEC) < 0) outfd = -1;
  for (int i = 0; i < MAX_CLIENTS; i++) cl[i].fd = -1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--rm")) opt_rm = 1;
    else if (!strcmp(a, "--tty")) opt_tty = 1;
    else if (!strcmp(a, "--stdin")) opt_stdin = 1;
    else if (!strcmp(a, "--attach-fd") && v) i++;
    else if (!v) fail(0, cat3("missing value of ", a, ""));
    else if (!strcmp(a, "--id")) id = v, i++;
    else if (!strcmp(a, "--dir")) dir = v, i++;
    else if (!strcmp(a, "--root")) root = v, i++;
    else if (!strcmp(a, "--tsrun")) tsrun = v, i++;
    else if (!strcmp(a, "--node")) node = v, i++;
    else if (!strcmp(a, "--log")) logpath = v, i++;
    else if (!strcmp(a, "--log-max-size")) log_max_size = atoll(v), i++;
    else if (!strcmp(a, "--health-interval")) { health_interval = atoll(v); i++; if (health_interval < 1) fail(0, "bad --health-interval"); }
    else if (!strcmp(a, "--log-max-file")) { log_max_file = atoi(v); i++; if (log_max_file < 1) fail(0, "bad --log-max-file"); }
    else if (!strcmp(a, "--restart")) {
      i++;
      if (set_policy(v) < 0) fail(0, "bad --restart (no|always|unless-stopped|on-failure[:N])");
    } else fail(0, cat3("unknown option ", a, ""));
  }
  if (!id || !dir || !root || !tsrun) fail(0, "--id, --dir, --root and --tsrun are required");
  dir = absolute(dir, 0); root = absolute(root, 0); logpath = absolute(logpath, 0);
  tsrun = absolute(tsrun, 1); node = absolute(node, 1);
  if (!logpath) logpath = cat3(dir, "/", cat3(id, "-json.log", ""));
  p_pidfile = cat3(dir, "/", "init.pid"); p_sock = cat3(dir, "/", "console.sock");
  p_fifo = cat3(root, "/oci/", cat3(id, "/exec.fifo", ""));
  p_suppid = cat3(dir, "/", "supervisor.pid"); p_suptmp = cat3(dir, "/", ".supervisor.pid.tmp");
  p_exit = cat3(dir, "/", "exit.json"); p_exittmp = cat3(dir, "/", ".exit.json.tmp");
  p_stopped = cat3(dir, "/", "stopped"); p_errlog = cat3(dir, "/", "supervisor.log");
  const char *p_attach = cat3(dir, "/", "attach.sock");
  p_events = cat3(root, "/", "events.jsonl"); p_events_old = cat3(root, "/", "events.jsonl.1");
  if (!p_events_old || !logpath) fail(0, "paths too long");  // (cat3 fails once the arena is full)

  signal(SIGHUP, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  pid_t p = fork();
  if (p < 0) fail(errno, "fork");
  if (p > 0) _exit(0);
  if (setsid() < 0) logerr(errno, "setsid");
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) fail(errno, "prctl PR_SET_CHILD_SUBREAPER");
  {  // DIR/attach.sock, bound by a relative name (DIR may be longer than sun_path)
    struct sockaddr_un addr = { .sun_family = AF_UNIX, .sun_path = "attach.sock" };
    mode_t um = umask(077);
    if (chdir(dir) < 0) fail(errno, dir);
    unlink("attach.sock");
    if ((attsock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0 ||
        bind(attsock, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(attsock, 8) < 0) fail(errno, p_attach);
    umask(um);
  }
  if (attfd >= 0) {
    if (fcntl(attfd, F_SETFD, FD_CLOEXEC) < 0 || fcntl(attfd, F_SETFL, O_NONBLOCK) < 0) logerr(errno, "fcntl attach fd");
    accept_client(attfd);
  }
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
  { struct stat st; if (fstat(logfd, &st) == 0) log_size = st.st_size; }
  if (opt_tty) {  // bound by a relative name, given to `tsrun create` as /proc/self/fd/3 (an O_PATH fd):
    // DIR may be longer than sun_path
    struct sockaddr_un addr = { .sun_family = AF_UNIX, .sun_path = "console.sock" };
    if (chdir(dir) < 0) fail(errno, dir);
    unlink("console.sock");
    if ((consock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        bind(consock, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(consock, 4) < 0 ||
        (conpath = open("console.sock", O_PATH | O_CLOEXEC)) < 0) fail(errno, sockpath);
    if (chdir("/") < 0) logerr(errno, "chdir /");
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
        unlink(p_attach);
        unlink(fin);
        return 125;
      }
    } else {
      event("start", -1);  // here, not in the CLI: before the die of a container that exits at once
      if (first) { snprintf(b, sizeof b, "%d", (int)init_pid); outcome("ok", b); }
      long long next_check = now_ms() + health_interval;
      while (!init_done) {  // (a second console on consock: not expected; recv_console closes it)
        int timeout = -1;
        if (health_interval > 0) {
          long long left = next_check - now_ms();
          if (left <= 0) {  // one probe (it records its result itself); the container keeps being served meanwhile
            int hp[2];
            if (mkpipe(hp) == 0) { tsrun_cmd(-1, -1, hp[1], hp[0], 1, "container", "healthcheck", id, NULL); close(hp[0]); close(hp[1]); }
            next_check = now_ms() + health_interval;
            continue;
          }
          timeout = left > 1000000 ? 1000000 : (int)left;
        }
        serve(-1, 1, timeout);
        reap(0, &dummy, &dummy);
      }
      code = WIFEXITED(init_status) ? WEXITSTATUS(init_status) : 128 + WTERMSIG(init_status);
      for (int k = 0; k < 2; k++) if (cfd[k] >= 0) pump(k);
      init_pid = 0;
    }
    first = 0;
    reload_policy();
    int again = !terminating && !stopped_marker() &&
                (policy == R_ALWAYS || policy == R_UNLESS_STOPPED ||
                 (policy == R_ON_FAILURE && code != 0 && (max_restarts < 0 || restarts < max_restarts)));
    if (again) restarts++;
    else {  // no restart: the container reads as exited (not restarting) while this supervisor finishes
      int sfd = open(p_stopped, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (sfd >= 0) close(sfd); else logerr(errno, "open %s", p_stopped);
    }
    // one Node start for what follows an exit: the OOM verdict, the runtime state deleted and, when
    // it stopped for good (and is not --rm: `rm -f` does it all), the network and the mount released
    released = !again && !opt_rm;
    oom = container_exited(released);
    write_exit(code, oom, restarts);
    if (oom) event("oom", -1);
    event("die", code);
    close_container_fds();
    notify_exit(code);
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
  close(attsock);
  unlink(p_attach);
  if (opt_rm) {
    if (unlink(fin) < 0) logerr(errno, "unlink %s", fin);
    close(logfd);
    int pp[2];
    if (mkpipe(pp) == 0) tsrun_cmd(-1, -1, pp[1], pp[0], 1, "rm", "-f", id, NULL);
  } else {
    // The container stopped for good: its network attachment (which lives as long as this
    // supervisor: veth, namespace, address, port rules) goes, and its root filesystem is unmounted
    // (`start` mounts it again; cp, diff, export and commit read it unmounted).
    // supervisor.pid stays until then: `stop` and `start` wait for it to go. (Released already,
    // with the exit, unless a restart was due and then called off.)
    int pp[2];
    if (!released && mkpipe(pp) == 0) {
      tsrun_cmd(-1, -1, pp[1], pp[0], 1, "container", "release", id, NULL);
      close(pp[0]); close(pp[1]);
    }
    if (unlink(fin) < 0) logerr(errno, "unlink %s", fin);
  }
  return 0;
}
