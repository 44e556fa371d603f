// tcpblast: a TCP stream for bench/net.sh. Built static (musl-gcc) into the bench image.
//   tcpblast -l PORT            accept one connection, read to EOF, close (a sink)
//   tcpblast HOST PORT MIB      connect, write MIB MiB of zeros in 256 KiB writes, shut down the
//                               write side, wait for the sink's close (all bytes received), print
//                               "BYTES SECONDS MB/s" (MB = 10^6 bytes), time from connect to close
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
static char buf[1 << 18];
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "-l")) {
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
    if (bind(s, (void *)&a, sizeof a) || listen(s, 1)) { perror("listen"); return 1; }
    int c = accept(s, 0, 0);
    if (c < 0) { perror("accept"); return 1; }
    long long n = 0; ssize_t r;
    while ((r = read(c, buf, sizeof buf)) > 0) n += r;
    close(c);
    fprintf(stderr, "%lld\n", n);
    return r < 0;
  }
  if (argc != 4) { fprintf(stderr, "usage: tcpblast -l PORT | tcpblast HOST PORT MIB\n"); return 2; }
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
  if (inet_pton(AF_INET, argv[1], &a.sin_addr) != 1) { fprintf(stderr, "bad address %s\n", argv[1]); return 2; }
  double t0 = 0;
  for (int i = 0; i < 100; i++) { // the sink may still be starting
    t0 = now();
    if (!connect(s, (void *)&a, sizeof a)) break;
    if (i == 99) { perror("connect"); return 1; }
    close(s); s = socket(AF_INET, SOCK_STREAM, 0); usleep(50000);
  }
  long long total = atoll(argv[3]) << 20, left = total;
  while (left > 0) {
    ssize_t w = write(s, buf, left < (long long)sizeof buf ? left : (long long)sizeof buf);
    if (w <= 0) { perror("write"); return 1; }
    left -= w;
  }
  shutdown(s, SHUT_WR);
  while (read(s, buf, sizeof buf) > 0) {}
  double dt = now() - t0;
  printf("%lld %.4f %.1f\n", total, dt, total / dt / 1e6);
  return 0;
}
