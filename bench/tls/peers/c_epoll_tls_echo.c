/* The TLS floor: a minimal single-threaded epoll echo server over OpenSSL, no framework at all
 * (the TLS twin of ../shared/bench/peers/c_epoll_echo.c). Non-blocking handshakes, SSL_read what is
 * ready, SSL_write it straight back; keeps only the plaintext the socket refuses.
 *
 * Read-ahead is on (one read(2) per record, not two), and a readable event reads until OpenSSL holds
 * nothing more (SSL_has_pending), never to EAGAIN: one read and one write per echo, as the plain floor.
 * SSL_MODE_RELEASE_BUFFERS gives OpenSSL's 16 KiB record buffers back while a connection is idle (as
 * nginx does), so its memory per idle connection is the floor's too.
 * On the client's close_notify it answers with its own and closes.
 *
 * usage: c_epoll_tls_echo PORT CERT.pem KEY.pem
 * build: gcc -O2 -o /tmp/c_epoll_tls_echo c_epoll_tls_echo.c -lssl -lcrypto */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXFD 65536
typedef struct { SSL *ssl; int handshaken; uint32_t events; char *pend; size_t len; } conn_t;

static int ep;
static conn_t conns[MAXFD];
static char buf[65536];

static void set_events(int fd, uint32_t events) {
  if (conns[fd].events == events) return;
  conns[fd].events = events;
  struct epoll_event ce = { .events = events, .data.fd = fd };
  epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ce);
}

static void drop(int fd) {
  conn_t *c = &conns[fd];
  SSL_free(c->ssl);
  free(c->pend);
  memset(c, 0, sizeof *c);
  close(fd);
}

/* What OpenSSL wants after a call that returned r <= 0: 1 to wait (events set), 0 to drop. */
static int want(int fd, int r) {
  switch (SSL_get_error(conns[fd].ssl, r)) {
  case SSL_ERROR_WANT_READ: set_events(fd, EPOLLIN | (conns[fd].len ? EPOLLOUT : 0)); return 1;
  case SSL_ERROR_WANT_WRITE: set_events(fd, EPOLLIN | EPOLLOUT); return 1;
  default: return 0;
  }
}

/* Sends what is kept. 1 when all went, 0 while the socket refuses, -1 on an error. */
static int flush(int fd) {
  conn_t *c = &conns[fd];
  while (c->len) {
    int w = SSL_write(c->ssl, c->pend, (int)c->len);
    if (w <= 0) return want(fd, w) ? 0 : -1;
    memmove(c->pend, c->pend + w, c->len - (size_t)w);
    c->len -= (size_t)w;
  }
  set_events(fd, EPOLLIN);
  return 1;
}

static void serve(int fd) {
  conn_t *c = &conns[fd];
  if (!c->handshaken) {
    int r = SSL_accept(c->ssl);
    if (r != 1) { if (!want(fd, r)) drop(fd); return; }
    c->handshaken = 1;
    set_events(fd, EPOLLIN);
  }
  if (c->len) {
    int f = flush(fd);
    if (f < 0) { drop(fd); return; }
    if (f == 0) return;  /* backpressure: read nothing more until the peer takes what is kept */
  }
  do {
    int r = SSL_read(c->ssl, buf, sizeof buf);
    if (r <= 0) {
      if (SSL_get_error(c->ssl, r) == SSL_ERROR_ZERO_RETURN) { SSL_shutdown(c->ssl); drop(fd); return; }
      if (!want(fd, r)) drop(fd);
      return;
    }
    int w = SSL_write(c->ssl, buf, r);
    if (w < 0) {
      if (SSL_get_error(c->ssl, w) != SSL_ERROR_WANT_WRITE) { drop(fd); return; }
      w = 0;
    }
    if (w < r) {
      c->pend = realloc(c->pend, c->len + (size_t)(r - w));
      memcpy(c->pend + c->len, buf + w, (size_t)(r - w));
      c->len += (size_t)(r - w);
      set_events(fd, EPOLLIN | EPOLLOUT);
      return;
    }
  } while (SSL_has_pending(c->ssl));
}

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: c_epoll_tls_echo PORT CERT.pem KEY.pem\n"); return 2; }
  int port = atoi(argv[1]);
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, argv[2]) != 1 || SSL_CTX_use_PrivateKey_file(ctx, argv[3], SSL_FILETYPE_PEM) != 1) {
    ERR_print_errors_fp(stderr);
    return 1;
  }
  SSL_CTX_set_read_ahead(ctx, 1);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);

  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001) };
  if (bind(ls, (struct sockaddr *)&sa, sizeof sa) || listen(ls, 1024)) { perror("listen"); return 1; }
  ep = epoll_create1(0);
  struct epoll_event ev = { .events = EPOLLIN, .data.fd = ls };
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  struct epoll_event evs[512];
  for (;;) {
    int k = epoll_wait(ep, evs, 512, -1);
    for (int e = 0; e < k; e++) {
      int fd = evs[e].data.fd;
      if (fd == ls) {
        int cfd;
        while ((cfd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          if (cfd >= MAXFD) { close(cfd); continue; }
          setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          conn_t *c = &conns[cfd];
          c->ssl = SSL_new(ctx);
          SSL_set_fd(c->ssl, cfd);
          c->events = EPOLLIN;
          struct epoll_event ce = { .events = EPOLLIN, .data.fd = cfd };
          epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ce);
        }
        continue;
      }
      if (conns[fd].ssl) serve(fd);
    }
  }
}
