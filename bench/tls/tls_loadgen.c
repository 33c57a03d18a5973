/* TLS echo load generator: the TLS twin of ../shared/bench/loadgen.c, over OpenSSL.
 * N connections, each handshakes (TLS 1.3 only), then sends a SIZE-byte message and waits for the
 * whole echo before sending the next (closed loop), for DURATION seconds after WARMUP seconds.
 * Prints one JSON line: requests/s, MiB/s, latency percentiles in microseconds, and the protocol
 * and cipher suite the server chose.
 *
 * The server's certificate is not verified: the harness makes a throwaway one per run, and what is
 * measured is the record layer, not the handshake. Read-ahead is on, so a record costs one read(2)
 * rather than two (header, then body), as in the echo floor (peers/c_epoll_tls_echo.c).
 *
 * usage: tls_loadgen HOST PORT CONNS SIZE DURATION_S [WARMUP_S]
 * build: gcc -O2 -o /tmp/tls-loadgen tls_loadgen.c -lssl -lcrypto */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXLAT_US 1000000
typedef struct { int fd; SSL *ssl; size_t recvd; int want_write; uint64_t t0; } conn_t;

static uint64_t now_ns(void) {
  struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void die_ssl(const char *what) {
  fprintf(stderr, "%s: ", what);
  ERR_print_errors_fp(stderr);
  fprintf(stderr, "\n");
  exit(1);
}

static void set_events(int ep, conn_t *c, int i, uint32_t events) {
  struct epoll_event ev = { .events = events, .data.u32 = i };
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Sends the message (again, after a WANT_WRITE: OpenSSL wants the same arguments back).
 * Returns 0, or -1 when the connection failed. */
static int send_msg(int ep, conn_t *c, int i, const char *msg, size_t size) {
  int w = SSL_write(c->ssl, msg, (int)size);
  if (w > 0) {
    if (c->want_write) { c->want_write = 0; set_events(ep, c, i, EPOLLIN); }
    return 0;
  }
  int e = SSL_get_error(c->ssl, w);
  if (e == SSL_ERROR_WANT_WRITE) {
    if (!c->want_write) { c->want_write = 1; set_events(ep, c, i, EPOLLIN | EPOLLOUT); }
    return 0;
  }
  if (e == SSL_ERROR_WANT_READ) return 0;  /* TLS 1.3 has no renegotiation; a key update reads on */
  return -1;
}

int main(int argc, char **argv) {
  if (argc < 6) { fprintf(stderr, "usage: tls_loadgen HOST PORT CONNS SIZE DURATION_S [WARMUP_S]\n"); return 2; }
  const char *host = argv[1]; int port = atoi(argv[2]), n = atoi(argv[3]);
  size_t size = (size_t)atol(argv[4]); double dur = atof(argv[5]);
  double warm = argc > 6 ? atof(argv[6]) : 1.0;
  if (n < 1 || size < 1 || size > (1u << 30) || dur <= 0) { fprintf(stderr, "tls_loadgen: bad arguments\n"); return 2; }
  char *msg = malloc(size), *buf = malloc(size > 65536 ? size : 65536);
  for (size_t i = 0; i < size; i++) msg[i] = 'a' + (i % 26);
  uint32_t *hist = calloc(MAXLAT_US + 1, sizeof(uint32_t));
  conn_t *c = calloc(n, sizeof(conn_t));

  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) die_ssl("SSL_CTX_new");
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
  SSL_CTX_set_read_ahead(ctx, 1);

  int ep = epoll_create1(0);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) { fprintf(stderr, "tls_loadgen: HOST must be an IPv4 address\n"); return 2; }
  for (int i = 0; i < n; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) { perror("connect"); return 1; }
    int one = 1; setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    if (SSL_connect(ssl) != 1) die_ssl("handshake");  /* blocking: the handshakes are not measured */
    fcntl(fd, F_SETFL, O_NONBLOCK);
    c[i].fd = fd; c[i].ssl = ssl;
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  const char *version = SSL_get_version(c[0].ssl), *cipher = SSL_get_cipher_name(c[0].ssl);

  uint64_t start = now_ns(), measure_from = start + (uint64_t)(warm * 1e9);
  uint64_t end = measure_from + (uint64_t)(dur * 1e9);
  uint64_t reqs = 0, errors = 0;
  for (int i = 0; i < n; i++) {  /* kick off */
    c[i].t0 = now_ns();
    if (send_msg(ep, &c[i], i, msg, size) < 0) { errors++; fprintf(stderr, "write failed\n"); goto done; }
  }
  struct epoll_event evs[512];
  for (;;) {
    if (now_ns() >= end) break;
    int k = epoll_wait(ep, evs, 512, 100);
    for (int e = 0; e < k; e++) {
      int i = (int)evs[e].data.u32;
      conn_t *cc = &c[i];
      if ((evs[e].events & EPOLLOUT) && cc->want_write) {
        if (send_msg(ep, cc, i, msg, size) < 0) { errors++; fprintf(stderr, "write failed\n"); goto done; }
        if (cc->want_write) continue;
      }
      if (!(evs[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) || cc->want_write) continue;
      /* Read until the echo is whole or OpenSSL needs the socket again: with read-ahead a record
       * already read may sit in OpenSSL's buffer, where epoll cannot see it. */
      while (cc->recvd < size) {
        size_t want = size - cc->recvd;
        int r = SSL_read(cc->ssl, buf, (int)(want > 65536 ? 65536 : want));
        if (r <= 0) {
          int err = SSL_get_error(cc->ssl, r);
          if (err == SSL_ERROR_WANT_READ) break;
          errors++;
          fprintf(stderr, "connection closed by server (%s)\n", err == SSL_ERROR_ZERO_RETURN ? "close_notify" : "error");
          ERR_print_errors_fp(stderr);
          goto done;
        }
        cc->recvd += (size_t)r;
        if (cc->recvd == size) {
          uint64_t t1 = now_ns();
          if (t1 >= measure_from) { reqs++; uint64_t us = (t1 - cc->t0) / 1000; hist[us > MAXLAT_US ? MAXLAT_US : us]++; }
          cc->recvd = 0; cc->t0 = t1;
          if (send_msg(ep, cc, i, msg, size) < 0) { errors++; fprintf(stderr, "write failed\n"); goto done; }
          break;  /* nothing more can come before the server has this message */
        }
      }
    }
  }
done:;
  double secs = dur;
  uint64_t acc = 0, p50 = 0, p99 = 0, p999 = 0;
  for (uint64_t us = 0; us <= MAXLAT_US; us++) {
    acc += hist[us];
    if (!p50 && acc * 2 >= reqs) p50 = us;
    if (!p99 && acc * 100 >= reqs * 99) p99 = us;
    if (!p999 && acc * 1000 >= reqs * 999) { p999 = us; break; }
  }
  printf("{\"rps\": %.0f, \"mib_s\": %.2f, \"p50_us\": %lu, \"p99_us\": %lu, \"p999_us\": %lu, \"conns\": %d, \"size\": %zu, "
         "\"errors\": %lu, \"tls\": \"%s\", \"cipher\": \"%s\"}\n",
         reqs / secs, reqs * (double)size * 2 / secs / 1048576.0, p50, p99, p999, n, size, errors, version, cipher);
  /* Close with close_notify, as a well-behaved client does (a server that waits for it may exit clean). */
  for (int i = 0; i < n; i++) { SSL_shutdown(c[i].ssl); close(c[i].fd); SSL_free(c[i].ssl); }
  SSL_CTX_free(ctx);
  return errors ? 1 : 0;
}
