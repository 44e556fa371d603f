// recvtty: the receiving end of `--console-socket` (Node cannot receive SCM_RIGHTS).
// usage: recvtty SOCKET_PATH
// Listens on SOCKET_PATH, accepts one connection, receives the file descriptors sent
// with SCM_RIGHTS and prints one line:
//   fds=N master=yes|no ptn=N
// ("master=yes" when the first fd answers TIOCGPTN, i.e. it is a pty master).
// Then copies everything read from that master to stdout until the slave side is
// closed (EIO) or the master hits EOF, and exits 0. Exits 1 on any setup error.
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: recvtty SOCKET_PATH\n"); return 2; }
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  if (strlen(argv[1]) >= sizeof addr.sun_path) { fprintf(stderr, "path too long\n"); return 1; }
  strcpy(addr.sun_path, argv[1]);
  unlink(argv[1]);
  if (s < 0 || bind(s, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(s, 1) < 0) {
    perror("recvtty: listen"); return 1;
  }
  int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
  if (c < 0) { perror("recvtty: accept"); return 1; }

  char data[4096];
  union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int) * 8)]; } cm;
  struct iovec iov = { data, sizeof data };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof cm.buf };
  ssize_t n = recvmsg(c, &msg, MSG_CMSG_CLOEXEC);
  if (n < 0) { perror("recvtty: recvmsg"); return 1; }
  int fds[8], nfds = 0;
  for (struct cmsghdr *h = CMSG_FIRSTHDR(&msg); h; h = CMSG_NXTHDR(&msg, h)) {
    if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS) continue;
    int k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (int i = 0; i < k && nfds < 8; i++) memcpy(&fds[nfds++], CMSG_DATA(h) + i * sizeof(int), sizeof(int));
  }
  unsigned ptn = 0;
  int master = nfds > 0 && ioctl(fds[0], TIOCGPTN, &ptn) == 0;
  printf("fds=%d master=%s ptn=%u\n", nfds, master ? "yes" : "no", master ? ptn : 0);
  fflush(stdout);
  close(c);
  close(s);
  unlink(argv[1]);
  if (!master) return 0;
  char buf[4096];
  for (;;) {
    ssize_t r = read(fds[0], buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;  // EIO: every slave fd closed
    if (write(1, buf, r) < 0) break;
  }
  return 0;
}
