/* The second floor: a minimal single-threaded io_uring echo server in C, no framework and no
 * liburing (raw io_uring_setup / io_uring_enter / io_uring_register through syscall(2), rings
 * mmapped by hand from <linux/io_uring.h>).
 *
 * Design, the best known for echo on io_uring:
 *   - one multishot accept on the listener;
 *   - one multishot recv per connection, into a provided buffer ring (IORING_REGISTER_PBUF_RING),
 *     so an idle connection holds no receive buffer; the ring is kept topped up from a LIFO stack
 *     of free buffers to what the next iteration needs, so the buffers reused are the hot ones;
 *   - each received buffer is sent back as it is (IORING_OP_SEND); the buffer is kept until its
 *     send completes (short sends resubmit the rest), then returned to the ring. One send in
 *     flight per connection, later buffers queue behind it in order;
 *   - one io_uring_enter per loop iteration, which submits everything queued and waits for at
 *     least one completion; the ring is made with SINGLE_ISSUER|DEFER_TASKRUN when the kernel
 *     takes them (COOP_TASKRUN, then nothing, otherwise).
 * Handled: connection close (recv 0 or error; the fd is closed once no operation on it is left),
 * ENOBUFS (the buffer ring ran dry: the receive is rearmed once a buffer comes back), multishot
 * termination (a CQE without IORING_CQE_F_MORE: rearmed), a full submission queue (submitted
 * early), send errors (the connection is shut down so its receive ends).
 *
 * usage: c_uring_echo PORT     (listens on 127.0.0.1:PORT, as c_epoll_echo does)
 * build: gcc -O2 -Wall -Wextra -o /tmp/c_uring_echo c_uring_echo.c
 * Sizes can be changed at build time: -DBUF_SIZE=65536 -DBUF_COUNT=1024 -DSQ_ENTRIES=4096.
 * Environment: URING_ECHO_SETUP=coop|plain (ring flags, for A/B runs), URING_ECHO_FIXED=1 (recv and
 * send on registered files, slot = fd, registered at accept), URING_ECHO_STATS=1 (counts at SIGTERM),
 * URING_ECHO_VERBOSE=1 (the ring's flags and features at start). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef BUF_SIZE
#define BUF_SIZE 65536 /* one receive; a loopback segment is at most 64 KiB */
#endif
#ifndef BUF_COUNT
#define BUF_COUNT 1024 /* power of two; pages are touched only as far as data is written */
#endif
#ifndef SQ_ENTRIES
#define SQ_ENTRIES 4096
#endif
#define CQ_ENTRIES (SQ_ENTRIES * 4)
#define MAX_FD 65536
#define BGID 0
#define NO_BUF 0xffff

/* user_data: operation in the low byte, fd above it */
enum { OP_ACCEPT = 1, OP_RECV = 2, OP_SEND = 3 };
#define UD(op, fd) ((uint64_t)(op) | ((uint64_t)(uint32_t)(fd) << 8))

typedef struct {
  uint16_t head, tail;    /* queue of received buffers to send back, linked through seg_next */
  uint8_t open;           /* accepted and not yet closed */
  uint8_t recv_armed;     /* a multishot recv is outstanding */
  uint8_t send_inflight;  /* a send is outstanding (for the head buffer) */
  uint8_t eof;            /* no more data will be read: close once nothing is outstanding */
  uint8_t starved;        /* on the starved list (recv ended with ENOBUFS) */
  int next_starved;
} conn_t;

static conn_t conns[MAX_FD];
/* per buffer id: the next buffer of the same connection's queue, and what is left to send */
static uint16_t seg_next[BUF_COUNT];
static uint32_t seg_off[BUF_COUNT], seg_len[BUF_COUNT];

static int ring_fd;
static unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
static unsigned *cq_head, *cq_tail, *cq_mask;
static struct io_uring_sqe *sqes;
static struct io_uring_cqe *cqes;
static unsigned sq_local_tail;  /* SQEs filled but not yet published */
static unsigned sq_submitted;   /* SQEs published (tail as the kernel sees it) */

static struct io_uring_buf_ring *br;
static char *bufs;
static uint16_t br_tail;        /* local tail of the buffer ring, published before each enter */
/* Buffers not in the kernel's ring wait on a LIFO stack, and the ring is only topped up to what
 * the next iteration needs: the ring itself is FIFO, so filling it with every buffer would cycle
 * receives through all BUF_COUNT x BUF_SIZE bytes (cold in cache; 0.78x the epoll floor at
 * 10 x 64 KiB), while this reuses the few buffers just sent back (still hot). */
static uint16_t free_stack[BUF_COUNT];
static unsigned free_top;       /* buffers on the stack */
static unsigned in_ring;        /* buffers in the kernel's ring, not yet consumed by a receive */
static unsigned recvs_this_iter;
#ifndef READY_MIN
#define READY_MIN 2 /* buffers kept in the ring at least, beyond twice the last iteration's receives (2, 8, 32: 2 best) */
#endif
static int starved_head = -1;
static int fixed_files;         /* URING_ECHO_FIXED=1: connections are registered files (slot = fd) */
static int max_fd = MAX_FD;     /* connections with a higher fd are refused */

/* counters, printed at SIGTERM/SIGINT when URING_ECHO_STATS is set */
static struct { unsigned long enters, cqes, recvs, recv_bytes, sends, short_sends, enobufs, rearms, accepts; } st;
static volatile sig_atomic_t stop_requested;
static void on_stop(int sig) { (void)sig; stop_requested = 1; }

static int sys_setup(unsigned entries, struct io_uring_params *p) {
  return (int)syscall(__NR_io_uring_setup, entries, p);
}
static int sys_enter(unsigned to_submit, unsigned min_complete, unsigned flags) {
  return (int)syscall(__NR_io_uring_enter, ring_fd, to_submit, min_complete, flags, NULL, 0);
}
static int sys_register(unsigned op, void *arg, unsigned nr) {
  return (int)syscall(__NR_io_uring_register, ring_fd, op, arg, nr);
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void setup_ring(void) {
  /* the best flags first; each fallback drops what an older kernel refuses */
  static const unsigned flag_sets[] = {
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL,
    IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
    0,
  };
  struct io_uring_params p;
  ring_fd = -1;
  /* URING_ECHO_SETUP=coop or =plain starts lower down the list, to measure what the flags buy */
  const char *want = getenv("URING_ECHO_SETUP");
  size_t first = want && !strcmp(want, "coop") ? 1 : want && !strcmp(want, "plain") ? 2 : 0;
  for (size_t i = first; i < sizeof flag_sets / sizeof flag_sets[0] && ring_fd < 0; i++) {
    memset(&p, 0, sizeof p);
    p.flags = flag_sets[i] | IORING_SETUP_CQSIZE;
    p.cq_entries = CQ_ENTRIES;
    ring_fd = sys_setup(SQ_ENTRIES, &p);
    if (ring_fd < 0 && errno != EINVAL) die("io_uring_setup (io_uring disabled? see /proc/sys/kernel/io_uring_disabled)");
  }
  if (ring_fd < 0) die("io_uring_setup");
  if (getenv("URING_ECHO_VERBOSE"))
    fprintf(stderr, "c_uring_echo: ring flags 0x%x, features 0x%x, sq %u cq %u\n", p.flags, p.features, p.sq_entries,
            p.cq_entries);

  size_t sq_size = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  size_t cq_size = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  int single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
  if (single && cq_size > sq_size) sq_size = cq_size;
  char *sq = mmap(NULL, sq_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_SQ_RING);
  if (sq == MAP_FAILED) die("mmap sq ring");
  char *cq = single ? sq
                    : mmap(NULL, cq_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_CQ_RING);
  if (cq == MAP_FAILED) die("mmap cq ring");
  sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
              ring_fd, IORING_OFF_SQES);
  if (sqes == MAP_FAILED) die("mmap sqes");
  sq_head = (unsigned *)(sq + p.sq_off.head);
  sq_tail = (unsigned *)(sq + p.sq_off.tail);
  sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
  sq_array = (unsigned *)(sq + p.sq_off.array);
  cq_head = (unsigned *)(cq + p.cq_off.head);
  cq_tail = (unsigned *)(cq + p.cq_off.tail);
  cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
  cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
  /* the index array maps slot i to SQE i once and for all */
  for (unsigned i = 0; i < p.sq_entries; i++) sq_array[i] = i;
  sq_local_tail = sq_submitted = *sq_tail;

  /* the provided buffer ring: its entries, then the buffers themselves */
  size_t br_size = BUF_COUNT * sizeof(struct io_uring_buf);
  br = mmap(NULL, br_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (br == MAP_FAILED) die("mmap buffer ring");
  bufs = mmap(NULL, (size_t)BUF_COUNT * BUF_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (bufs == MAP_FAILED) die("mmap buffers");
  struct io_uring_buf_reg reg = { .ring_addr = (uint64_t)(uintptr_t)br, .ring_entries = BUF_COUNT, .bgid = BGID };
  if (sys_register(IORING_REGISTER_PBUF_RING, &reg, 1) < 0) die("io_uring_register PBUF_RING (kernel before 5.19?)");
  if (fixed_files) {
    /* the table may not exceed RLIMIT_NOFILE: raise the soft limit to the hard one, and size by it */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)max_fd) max_fd = (int)rl.rlim_cur;
    struct io_uring_rsrc_register rr = { .nr = (unsigned)max_fd, .flags = IORING_RSRC_REGISTER_SPARSE };
    if (sys_register(IORING_REGISTER_FILES2, &rr, sizeof rr) < 0) die("io_uring_register FILES2 (sparse)");
  }
  for (unsigned i = 0; i < BUF_COUNT; i++) free_stack[free_top++] = (uint16_t)(BUF_COUNT - 1 - i);  /* 0 on top */
  br_tail = 0;
}

/* Publishes the SQEs filled since the last call; returns how many. */
static unsigned publish_sqes(void) {
  unsigned n = sq_local_tail - sq_submitted;
  if (n) {
    __atomic_store_n(sq_tail, sq_local_tail, __ATOMIC_RELEASE);
    sq_submitted = sq_local_tail;
  }
  return n;
}

static struct io_uring_sqe *get_sqe(void) {
  unsigned head = __atomic_load_n(sq_head, __ATOMIC_ACQUIRE);
  while (sq_local_tail - head >= *sq_mask + 1) {
    /* full: hand what is queued to the kernel now, without waiting */
    int r = sys_enter(publish_sqes(), 0, 0);
    if (r < 0 && errno != EINTR && errno != EAGAIN && errno != EBUSY) die("io_uring_enter (submit)");
    head = __atomic_load_n(sq_head, __ATOMIC_ACQUIRE);
  }
  struct io_uring_sqe *sqe = &sqes[sq_local_tail & *sq_mask];
  sq_local_tail++;
  memset(sqe, 0, sizeof *sqe);
  return sqe;
}

static void arm_accept(int ls) {
  struct io_uring_sqe *sqe = get_sqe();
  sqe->opcode = IORING_OP_ACCEPT;
  sqe->fd = ls;
  sqe->ioprio = IORING_ACCEPT_MULTISHOT;
  sqe->user_data = UD(OP_ACCEPT, ls);
}

/* Registers or unregisters (fd -1) the connection's slot in the file table; per connection, not per echo. */
static void update_slot(int slot, int fd) {
  struct io_uring_files_update up = { .offset = (unsigned)slot, .fds = (uint64_t)(uintptr_t)&fd };
  if (sys_register(IORING_REGISTER_FILES_UPDATE, &up, 1) < 0) die("io_uring_register FILES_UPDATE");
}

static void arm_recv(int fd) {
  st.rearms++;
  struct io_uring_sqe *sqe = get_sqe();
  sqe->opcode = IORING_OP_RECV;
  sqe->fd = fd;
  sqe->ioprio = IORING_RECV_MULTISHOT;
  sqe->flags = IOSQE_BUFFER_SELECT | (fixed_files ? IOSQE_FIXED_FILE : 0);
  sqe->buf_group = BGID;
  sqe->user_data = UD(OP_RECV, fd);
  conns[fd].recv_armed = 1;
}

static void send_head(int fd) {
  conn_t *c = &conns[fd];
  uint16_t bid = c->head;
  struct io_uring_sqe *sqe = get_sqe();
  sqe->opcode = IORING_OP_SEND;
  sqe->fd = fd;
  sqe->flags = fixed_files ? IOSQE_FIXED_FILE : 0;
  sqe->addr = (uint64_t)(uintptr_t)(bufs + (size_t)bid * BUF_SIZE + seg_off[bid]);
  sqe->len = seg_len[bid];
  sqe->msg_flags = MSG_NOSIGNAL;
  sqe->user_data = UD(OP_SEND, fd);
  c->send_inflight = 1;
}

/* A buffer whose bytes are sent (or dropped) goes back on the stack, the first to be reused. */
static void return_buf(uint16_t bid) { free_stack[free_top++] = bid; }

/* Tops the kernel's ring up from the stack to what the next iteration may need; published by the caller. */
static void refill_ring(void) {
  unsigned want = READY_MIN + 2 * recvs_this_iter;
  if (want > BUF_COUNT) want = BUF_COUNT;
  while (in_ring < want && free_top > 0) {
    uint16_t bid = free_stack[--free_top];
    struct io_uring_buf *b = &br->bufs[br_tail & (BUF_COUNT - 1)];
    b->addr = (uint64_t)(uintptr_t)(bufs + (size_t)bid * BUF_SIZE);
    b->len = BUF_SIZE;
    b->bid = bid;
    br_tail++;
    in_ring++;
  }
  recvs_this_iter = 0;
}

static void drop_queue(conn_t *c) {
  while (c->head != NO_BUF) {
    uint16_t bid = c->head;
    c->head = seg_next[bid];
    return_buf(bid);
  }
  c->tail = NO_BUF;
}

/* Closes the connection once nothing of it is outstanding in the ring. */
static void maybe_close(int fd) {
  conn_t *c = &conns[fd];
  if (!c->open || !c->eof || c->recv_armed || c->send_inflight || c->starved) return;
  drop_queue(c);
  c->open = 0;
  if (fixed_files) update_slot(fd, -1);
  close(fd);
}

static void on_recv(int fd, int res, unsigned flags) {
  conn_t *c = &conns[fd];
  int more = (flags & IORING_CQE_F_MORE) != 0;
  if (!more) c->recv_armed = 0;
  if (res > 0) {
    st.recvs++;
    st.recv_bytes += (unsigned long)res;
    uint16_t bid = (uint16_t)(flags >> IORING_CQE_BUFFER_SHIFT);
    in_ring--;
    recvs_this_iter++;
    if (c->eof) {  /* a send failed: nothing more goes out */
      return_buf(bid);
    } else {
      seg_off[bid] = 0;
      seg_len[bid] = (uint32_t)res;
      seg_next[bid] = NO_BUF;
      if (c->tail == NO_BUF) c->head = bid; else seg_next[c->tail] = bid;
      c->tail = bid;
      if (!c->send_inflight) send_head(fd);
      if (!more) arm_recv(fd);
      return;
    }
  } else if (res == -ENOBUFS && !c->eof) {
    /* the ring ran dry (every buffer waits for its send): rearm when one comes back */
    st.enobufs++;
    recvs_this_iter++;  /* counts as demand: the next refill provides more */
    if (!more && !c->starved) {
      c->starved = 1;
      c->next_starved = starved_head;
      starved_head = fd;
    }
    return;
  } else if (res == 0 || res < 0) {
    c->eof = 1;  /* peer closed, or an error: no more data */
  }
  if (!more && !c->eof) arm_recv(fd);
  maybe_close(fd);
}

static void on_send(int fd, int res) {
  conn_t *c = &conns[fd];
  c->send_inflight = 0;
  uint16_t bid = c->head;
  st.sends++;
  if (res < 0) {
    /* the peer is gone: drop what was to be sent, and end the receive so the fd can close */
    c->eof = 1;
    drop_queue(c);
    shutdown(fd, SHUT_RDWR);
  } else if (bid != NO_BUF) {
    seg_off[bid] += (uint32_t)res;
    seg_len[bid] -= (uint32_t)res;
    if (seg_len[bid] != 0) st.short_sends++;
    if (seg_len[bid] == 0) {
      c->head = seg_next[bid];
      if (c->head == NO_BUF) c->tail = NO_BUF;
      return_buf(bid);
    }
    if (c->head != NO_BUF) send_head(fd);  /* a short send resubmits the rest, or the next buffer */
  }
  maybe_close(fd);
}

static void on_accept(int ls, int res, unsigned flags) {
  if (!(flags & IORING_CQE_F_MORE)) arm_accept(ls);
  if (res < 0) {
    if (res != -EAGAIN && res != -EINTR && res != -ECONNABORTED) {
      errno = -res;
      perror("accept");
    }
    return;
  }
  if (res >= max_fd) { close(res); return; }
  int one = 1;
  setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  st.accepts++;
  conn_t *c = &conns[res];
  memset(c, 0, sizeof *c);
  c->head = c->tail = NO_BUF;
  c->open = 1;
  if (fixed_files) update_slot(res, res);
  arm_recv(res);
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 25000;
  signal(SIGPIPE, SIG_IGN);
  fixed_files = getenv("URING_ECHO_FIXED") != NULL && strcmp(getenv("URING_ECHO_FIXED"), "0") != 0;
  int stats = getenv("URING_ECHO_STATS") != NULL;
  if (stats) {
    struct sigaction sa_stop = { .sa_handler = on_stop };  /* no SA_RESTART: the enter returns EINTR */
    sigaction(SIGTERM, &sa_stop, NULL);
    sigaction(SIGINT, &sa_stop, NULL);
  }
  int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001) };
  if (bind(ls, (struct sockaddr *)&sa, sizeof sa) || listen(ls, 1024)) die("listen");
  setup_ring();
  arm_accept(ls);
  for (;;) {
    refill_ring();
    /* rearm receives that found the ring dry, now that buffers are back */
    while (starved_head >= 0 && in_ring > 0) {
      int fd = starved_head;
      conn_t *c = &conns[fd];
      starved_head = c->next_starved;
      c->starved = 0;
      if (c->eof) maybe_close(fd); else arm_recv(fd);
    }
    __atomic_store_n(&br->tail, br_tail, __ATOMIC_RELEASE);
    /* one syscall per iteration: submit what was queued, wait for at least one completion */
    int r = sys_enter(publish_sqes(), 1, IORING_ENTER_GETEVENTS);
    if (r < 0 && errno != EINTR && errno != EAGAIN && errno != EBUSY) die("io_uring_enter");
    st.enters++;
    if (stop_requested) {
      fprintf(stderr, "c_uring_echo: %lu enters, %lu cqes, %lu accepts, %lu recvs (%lu bytes), %lu sends (%lu short), "
              "%lu recv arms, %lu ENOBUFS\n", st.enters, st.cqes, st.accepts, st.recvs, st.recv_bytes, st.sends,
              st.short_sends, st.rearms, st.enobufs);
      return 0;
    }
    unsigned head = *cq_head, tail = __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE);
    for (; head != tail; head++) {
      struct io_uring_cqe *cqe = &cqes[head & *cq_mask];
      uint64_t ud = cqe->user_data;
      int res = cqe->res, fd = (int)(ud >> 8);
      unsigned flags = cqe->flags;
      st.cqes++;
      switch (ud & 0xff) {
        case OP_ACCEPT: on_accept(fd, res, flags); break;
        case OP_RECV: on_recv(fd, res, flags); break;
        case OP_SEND: on_send(fd, res); break;
      }
    }
    __atomic_store_n(cq_head, head, __ATOMIC_RELEASE);
  }
}
