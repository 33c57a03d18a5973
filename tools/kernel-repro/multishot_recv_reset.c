/* A minimal reproduction, for a kernel report, of why Tulip's io_uring loop keeps multishot receives
 * off (see docs/ARCHITECTURE.md, "The io_uring loop").
 *
 * A TCP peer sends data and then resets the connection (SO_LINGER {1, 0} and close). The receiving
 * side arms one multishot IORING_OP_RECV with buffer select, and recycles each buffer into the
 * provided-buffer ring as its completion is read. Expected: completions for every byte, then a last
 * completion without IORING_CQE_F_MORE whose result is -ECONNRESET. Seen on 6.18 in some trials: the
 * last data completion has IORING_CQE_F_MORE and no IORING_CQE_F_SOCK_NONEMPTY (the socket is
 * drained), and then nothing: the reset, which arrived while data was still queued, is never reported,
 * and the connection hangs. A single-shot receive armed again after each completion always reports it.
 *
 * No liburing: raw io_uring_setup/io_uring_enter/io_uring_register through syscall(2).
 * build: gcc -O2 -Wall -Wextra -o /tmp/multishot_recv_reset multishot_recv_reset.c
 * usage: multishot_recv_reset [TRIALS [single]]   (exit 1 if any trial hung; "single" arms one-shot receives)
 * Each trial: a fresh loopback connection; the sender writes 1-8 MiB and resets. The receiver (by
 * turns) arms its receive before the data, or after the reset has arrived, or reads until the ring
 * runs dry (keeping the buffers), lets the sender fill its window and reset, then gives every buffer
 * back and arms again (what a paused Tulip transport that is resumed after the peer's reset does).
 * A trial with no ending completion within 2 s counts as hung. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/io_uring.h>
#include <linux/time_types.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE 32768
#define BUF_COUNT 256
#define ENTRIES 64
#define UD_RECV (1 + ((uint64_t)trial_no << 8)) /* per trial: a stray completion of an earlier one is ignored */
#define UD_TIMEOUT 2

static int ring_fd;
static int trial_no;
static unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
static struct io_uring_sqe *sqes;
static struct io_uring_cqe *cqes;
static unsigned sq_local;
static struct io_uring_buf_ring *br;
static char *bufs;
static uint16_t br_tail;

static void die(const char *what) { perror(what); exit(2); }

static void setup(void) {
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL; /* what Tulip's loop uses */
  ring_fd = (int)syscall(__NR_io_uring_setup, ENTRIES, &p);
  if (ring_fd < 0) die("io_uring_setup");
  size_t sq_size = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  size_t cq_size = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  if (cq_size > sq_size) sq_size = cq_size; /* IORING_FEAT_SINGLE_MMAP, every kernel since 5.4 */
  char *sq = mmap(NULL, sq_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_SQ_RING);
  if (sq == MAP_FAILED) die("mmap rings");
  sqes = mmap(NULL, p.sq_entries * sizeof *sqes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_SQES);
  if (sqes == MAP_FAILED) die("mmap sqes");
  sq_tail = (unsigned *)(sq + p.sq_off.tail);
  sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
  sq_array = (unsigned *)(sq + p.sq_off.array);
  cq_head = (unsigned *)(sq + p.cq_off.head);
  cq_tail = (unsigned *)(sq + p.cq_off.tail);
  cq_mask = (unsigned *)(sq + p.cq_off.ring_mask);
  cqes = (struct io_uring_cqe *)(sq + p.cq_off.cqes);
  for (unsigned i = 0; i < p.sq_entries; i++) sq_array[i] = i;
  sq_local = *sq_tail;
  br = mmap(NULL, BUF_COUNT * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  bufs = mmap(NULL, (size_t)BUF_COUNT * BUF_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (br == MAP_FAILED || bufs == MAP_FAILED) die("mmap buffers");
  struct io_uring_buf_reg reg = { .ring_addr = (uint64_t)(uintptr_t)br, .ring_entries = BUF_COUNT, .bgid = 0 };
  if (syscall(__NR_io_uring_register, ring_fd, IORING_REGISTER_PBUF_RING, &reg, 1) < 0) die("register PBUF_RING");
}

static void give_buffer(uint16_t bid) {
  struct io_uring_buf *b = &br->bufs[br_tail & (BUF_COUNT - 1)];
  b->addr = (uint64_t)(uintptr_t)(bufs + (size_t)bid * BUF_SIZE);
  b->len = BUF_SIZE;
  b->bid = bid;
  br_tail++;
  __atomic_store_n(&br->tail, br_tail, __ATOMIC_RELEASE);
}

static struct io_uring_sqe *get_sqe(void) {
  struct io_uring_sqe *sqe = &sqes[sq_local++ & *sq_mask];
  memset(sqe, 0, sizeof *sqe);
  return sqe;
}

static int submit_and_wait(unsigned wait) {
  unsigned n = sq_local - *sq_tail;
  __atomic_store_n(sq_tail, sq_local, __ATOMIC_RELEASE);
  int r;
  do r = (int)syscall(__NR_io_uring_enter, ring_fd, n, wait, wait ? IORING_ENTER_GETEVENTS : 0, NULL, 0);
  while (r < 0 && errno == EINTR);
  return r;
}

static void arm_recv(int fd, int multishot) {
  struct io_uring_sqe *sqe = get_sqe();
  sqe->opcode = IORING_OP_RECV;
  sqe->fd = fd;
  sqe->ioprio = multishot ? IORING_RECV_MULTISHOT : 0;
  sqe->flags = IOSQE_BUFFER_SELECT;
  sqe->buf_group = 0;
  sqe->user_data = UD_RECV;
}

static struct __kernel_timespec two_seconds = { .tv_sec = 2 };

static void arm_timeout(void) {
  struct io_uring_sqe *sqe = get_sqe();
  sqe->opcode = IORING_OP_TIMEOUT;
  sqe->fd = -1;
  sqe->addr = (uint64_t)(uintptr_t)&two_seconds;
  sqe->len = 1;
  sqe->user_data = UD_TIMEOUT;
}

static void cancel_timeout(void) {
  struct io_uring_sqe *sqe = get_sqe();
  sqe->opcode = IORING_OP_TIMEOUT_REMOVE;
  sqe->fd = -1;
  sqe->addr = UD_TIMEOUT;
  sqe->user_data = 0;
}

static void pair(int *client, int *server) {
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  socklen_t len = sizeof a;
  if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1) || getsockname(ls, (struct sockaddr *)&a, &len))
    die("listen");
  *client = socket(AF_INET, SOCK_STREAM, 0);
  if (*client < 0 || connect(*client, (struct sockaddr *)&a, sizeof a)) die("connect");
  *server = accept(ls, NULL, NULL);
  if (*server < 0) die("accept");
  close(ls);
}

static void sleep_ms(long ms) {
  struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
  nanosleep(&ts, NULL);
}

static const char *const mode_names[] = {
  "armed before the data", "armed after the reset", "ring run dry, then the reset, then armed again",
};

/* Reads completions until the receive ends or 2 s pass with none that ends it. Buffers go back to
 * the ring at once unless keep_buffers (then they are counted in *held and given back by the caller).
 * Returns 1 if it hung; *result is the ending completion's result. */
static int drain(int client, int multishot, int keep_buffers, uint16_t *held, unsigned *nheld, size_t *got,
                 unsigned *completions, unsigned *last_flags, int *result) {
  int hung = 0;
  arm_timeout();
  for (;;) {
    if (submit_and_wait(1) < 0) die("io_uring_enter");
    unsigned head = *cq_head, tail = __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE);
    int ended = 0;
    for (; head != tail; head++) {
      struct io_uring_cqe *c = &cqes[head & *cq_mask];
      if (c->user_data == UD_TIMEOUT) { if (c->res == -ETIME) hung = 1; continue; }
      if (c->user_data != UD_RECV) continue;
      (*completions)++;
      *last_flags = c->flags;
      if (c->flags & IORING_CQE_F_BUFFER) {
        uint16_t bid = (uint16_t)(c->flags >> IORING_CQE_BUFFER_SHIFT);
        if (keep_buffers) held[(*nheld)++] = bid; else give_buffer(bid);
      }
      if (c->res > 0) *got += (size_t)c->res;
      if (!(c->flags & IORING_CQE_F_MORE)) {
        if (c->res > 0 || (c->res == -ENOBUFS && !keep_buffers)) arm_recv(client, multishot); /* ended with data: arm again */
        else { ended = 1; *result = c->res; }
      }
    }
    __atomic_store_n(cq_head, head, __ATOMIC_RELEASE);
    if (ended || hung) break;
  }
  if (!hung) {
    cancel_timeout();
    submit_and_wait(0);
  }
  return hung;
}

/* One trial; returns 1 if it hung. */
static int trial(int n, int multishot) {
  int client, server;
  trial_no = n;
  pair(&client, &server);
  int mode = n % 3;
  size_t total = (size_t)(1 + n % 8) << 20;
  static uint16_t held[BUF_COUNT];
  unsigned nheld = 0, completions = 0, last_flags = 0;
  size_t got = 0, sent = 0;
  int result = 0, hung = 0;
  static char chunk[1 << 16];
  if (mode == 0) { arm_recv(client, multishot); submit_and_wait(0); }
  if (mode == 2) {
    /* the receiver reads until the ring is dry (TCP autotuning grows its window meanwhile) and keeps
     * every buffer, as a paused transport's do before it copies them aside */
    arm_recv(client, multishot);
    submit_and_wait(0);
    while (result != -ENOBUFS) { /* until the receive itself ends for want of a buffer */
      ssize_t w = send(server, chunk, sizeof chunk, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (w > 0) sent += (size_t)w;
      unsigned head = *cq_head, tail = __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE);
      submit_and_wait(w > 0 ? 0 : 1);
      tail = __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE);
      for (; head != tail; head++) {
        struct io_uring_cqe *c = &cqes[head & *cq_mask];
        if (c->user_data != UD_RECV) continue;
        completions++;
        if (c->flags & IORING_CQE_F_BUFFER) held[nheld++] = (uint16_t)(c->flags >> IORING_CQE_BUFFER_SHIFT);
        if (c->res > 0) got += (size_t)c->res;
        if (!(c->flags & IORING_CQE_F_MORE)) {
          if (c->res == -ENOBUFS) result = -ENOBUFS; else arm_recv(client, multishot);
        }
      }
      __atomic_store_n(cq_head, head, __ATOMIC_RELEASE);
    }
    total = sent + total; /* then as much again, into the grown window */
  }
  while (sent < total) {
    ssize_t w = send(server, chunk, sizeof chunk, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w <= 0) break; /* the receiver is full: reset with data still unsent */
    sent += (size_t)w;
  }
  struct linger lg = { .l_onoff = 1, .l_linger = 0 };
  setsockopt(server, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(server); /* RST */
  if (mode != 0) {
    sleep_ms(20);
    for (unsigned i = 0; i < nheld; i++) give_buffer(held[i]);
    nheld = 0;
    arm_recv(client, multishot);
  }
  result = 0;
  size_t got_before = got;
  unsigned completions_before = completions;
  hung = drain(client, multishot, 0, held, &nheld, &got, &completions, &last_flags, &result);
  printf("trial %2d: %s, %s: %zu KiB sent, %zu KiB received (%zu KiB in %u completions at the end): %s (last flags 0x%x)\n", n,
         multishot ? "multishot" : "single-shot", mode_names[mode], sent >> 10, got >> 10, (got - got_before) >> 10,
         completions - completions_before,
         hung ? "HUNG, no reset reported" : result == -ECONNRESET ? "reset reported" : strerror(-result), last_flags);
  if (!hung) close(client);
  return hung;
}

int main(int argc, char **argv) {
  int trials = argc > 1 ? atoi(argv[1]) : 20;
  int multishot = !(argc > 2 && !strcmp(argv[2], "single"));
  setup();
  for (uint16_t i = 0; i < BUF_COUNT; i++) give_buffer(i);
  int hung = 0;
  for (int n = 0; n < trials; n++) {
    hung += trial(n, multishot);
    if (hung) break; /* the hung receive still holds the ring's state: stop at the first */
  }
  printf("%d of %d trials hung\n", hung, trials);
  return hung ? 1 : 0;
}
