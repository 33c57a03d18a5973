#!/usr/bin/env python3
"""The echo benchmarks of docs/PERFORMANCE.md, side by side with every peer, from one command.

usage: bench/echo/run.py [build|throughput|alloc|syscalls|idle|startup|all] ... [--quick]

  build       build every peer: the C floors, epoll and io_uring (gcc, to /tmp), the .NET peers (dotnet publish, to
              /tmp/dotnet_echo), the Tulip echo server (.build/echo-server), the Tulip echo server
              published ReadyToRun and trimmed self-contained (/tmp/tulip_echo_r2r, /tmp/tulip_echo_trim),
              and tries Native AOT (/tmp/tulip_echo_aot), reporting the exact error if the toolchain
              is missing; checks node and /usr/bin/python3 with uvloop
  throughput  ../shared/bench/echo_bench.py with all peers in one run, 3 rounds, for 10 x 1 KiB,
              100 x 1 KiB and 10 x 64 KiB
  alloc       managed bytes allocated per echoed read in steady state (TULIP_ECHO_STATS=1), protocol
              and buffered, for the same three shapes (LOOP=io_uring in the environment for that loop;
              default epoll)
  syscalls    strace -c -f over a run of tulip (epoll and io_uring loops), tulip buffered, both C floors
              and uvloop (10 x 1 KiB), and the same counts taken unperturbed with perf's syscall
              tracepoints over a steady window; NAME=CMD arguments replace the servers (CONNS and SIZE
              in the environment, as for cpu)
  idle        10,000 idle connections held (bench/echo/idle_conns.py): RSS per connection of every
              server, and Tulip's managed heap per connection, in one run (NAME=CMD arguments replace
              the servers; a name starting with tulip is asked for its heap)
  startup     time from process start to the first echoed byte (median of 5)
  cpu         server CPU time (user and system, /proc/PID/stat) per echo, for A/B runs of a hot-path
              change: `run.py cpu base='/tmp/a/EchoServer {port}' new='/tmp/b/EchoServer {port}'`
              (CONNS and SIZE in the environment; default 10 x 1024)
  instructions  user-space instructions per echo under callgrind (valgrind), same arguments as cpu:
              the load-immune figure for judging a hot-path change
  all         all of the above, in that order

Every section prints a Markdown table with the command behind it and the load average before and
after (/proc/loadavg): the machine is shared, so re-run a section whose load was high. Servers run
pinned to CPU 0 and load generators to CPU 1, as in echo_bench.py. --quick shortens every run, to
check the runner itself; its figures are not results.

Needs: gcc, dotnet, node, /usr/bin/python3 with uvloop (apt-get install -y python3-uvloop), strace
(apt-get install -y strace) and perf (apt-get install -y linux-perf) for the syscall section. The
shared harness is found at $TULIP_BENCH_SHARED, else ../shared/bench beside the repository, else
/work/shared/bench.
"""
import ast, json, os, resource, shlex, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PY = '/usr/bin/python3'
QUICK = '--quick' in sys.argv


def shared_dir():
    for d in (os.environ.get('TULIP_BENCH_SHARED'), os.path.join(ROOT, '..', 'shared', 'bench'), '/work/shared/bench'):
        if d and os.path.exists(os.path.join(d, 'echo_bench.py')):
            return os.path.abspath(d)
    sys.exit('run.py: the shared harness (echo_bench.py) was not found; set TULIP_BENCH_SHARED to its folder')


SHARED = shared_dir()
PEERS_DIR = os.path.join(SHARED, 'peers')
ECHO_BIN = os.path.join(ROOT, '.build', 'echo-server', 'EchoServer')
LOADGEN = os.path.join(os.environ.get('TMPDIR', '/tmp'), 'echo-loadgen')
URING_SRC = os.path.join(ROOT, 'bench', 'echo', 'peers', 'c_uring_echo.c')
URING_BIN = '/tmp/c_uring_echo'

# name -> server command ({port} is replaced). The first is the baseline of every ratio.
SERVERS = {
    'c-epoll': '/tmp/c_epoll_echo {port}',
    # the second floor: the same server on io_uring (bench/echo/peers/c_uring_echo.c, no liburing)
    'c-io_uring': f'{URING_BIN} {{port}}',
    # scripts/echo-server execs this binary; run directly, so a source edited during a run cannot
    # make the wrapper rebuild between rounds (ensure_tulip builds it once, before the section).
    'tulip': f'{ECHO_BIN} {{port}} protocol epoll',
    'tulip-buffered': f'{ECHO_BIN} {{port}} buffered epoll',
    'tulip-io_uring': f'{ECHO_BIN} {{port}} protocol io_uring',
    # the io_uring loop with ring writes (IoUringEventLoop.RingWrites): every write a ring SEND at the
    # end of the iteration, off by default (docs/PERFORMANCE.md)
    'tulip-io_uring-ring': f'env TULIP_URING_WRITES=ring {ECHO_BIN} {{port}} protocol io_uring',
    'uvloop': f'{PY} {PEERS_DIR}/asyncio_echo.py {{port}} protocol uvloop',
    'asyncio': f'{PY} {PEERS_DIR}/asyncio_echo.py {{port}} protocol asyncio',
    'uvloop-streams': f'{PY} {PEERS_DIR}/asyncio_echo.py {{port}} streams uvloop',
    'node': f'node {PEERS_DIR}/node_echo.js {{port}}',
    'dotnet-sockets': '/tmp/dotnet_echo/dotnet_echo {port} sockets',
    'kestrel': '/tmp/dotnet_echo/dotnet_echo {port} kestrel',
}

SHAPES = [(10, 1024), (100, 1024), (10, 65536)]


def loadavg():
    with open('/proc/loadavg') as f:
        return ' '.join(f.read().split()[:3])


def out(line=''):
    print(line, flush=True)


def run(cmd, **kw):
    """Runs a helper command; its output goes to stderr unless captured, so stdout is only the tables."""
    print('$ ' + (cmd if isinstance(cmd, str) else shlex.join(cmd)), file=sys.stderr, flush=True)
    if 'capture_output' not in kw and 'stdout' not in kw:
        kw['stdout'] = sys.stderr
    return subprocess.run(cmd, shell=isinstance(cmd, str), **kw)


# ---- build ---------------------------------------------------------------------------------------

def ensure_tulip():
    """Builds the Tulip echo server if a source changed (what scripts/echo-server does on each start)."""
    run([os.path.join(ROOT, 'scripts', 'echo-server'), '0'], capture_output=True)  # builds, then exits 2 on port 0
    if not os.path.exists(ECHO_BIN):
        sys.exit('run.py: the Tulip echo server did not build; run scripts/echo-server to see why')


def ensure_uring_floor():
    """Builds the C io_uring floor when it is missing or older than its source (gcc, no liburing)."""
    if not os.path.exists(URING_BIN) or os.path.getmtime(URING_BIN) < os.path.getmtime(URING_SRC):
        run(['gcc', '-O2', '-Wall', '-Wextra', '-o', URING_BIN, URING_SRC], check=True)


def build():
    run(['gcc', '-O2', '-o', '/tmp/c_epoll_echo', os.path.join(PEERS_DIR, 'c_epoll_echo.c')], check=True)
    run(['gcc', '-O2', '-Wall', '-Wextra', '-o', URING_BIN, URING_SRC], check=True)
    run(['gcc', '-O2', '-o', LOADGEN, os.path.join(SHARED, 'loadgen.c')], check=True)
    run(['dotnet', 'publish', '-c', 'Release', '-o', '/tmp/dotnet_echo', os.path.join(PEERS_DIR, 'dotnet_echo'),
         '--nologo', '-v', 'q'], check=True)
    echo_proj = os.path.join(ROOT, 'samples', 'EchoServer', 'EchoServer.csproj')
    run(['dotnet', 'build', echo_proj, '-c', 'Release', '-o', os.path.dirname(ECHO_BIN), '--nologo', '-v', 'q',
         '-clp:ErrorsOnly'], check=True)
    os.utime(ECHO_BIN)  # scripts/echo-server rebuilds only when a source is newer than this
    run(['dotnet', 'publish', echo_proj, '-c', 'Release', '-r', 'linux-x64', '--self-contained', 'false',
         '-p:PublishReadyToRun=true', '-o', '/tmp/tulip_echo_r2r', '--nologo', '-v', 'q'], check=True)
    run(['dotnet', 'publish', echo_proj, '-c', 'Release', '-r', 'linux-x64', '--self-contained', 'true',
         '-p:PublishTrimmed=true', '-o', '/tmp/tulip_echo_trim', '--nologo', '-v', 'q'], check=True)
    aot = run(['dotnet', 'publish', echo_proj, '-c', 'Release', '-r', 'linux-x64', '-p:PublishAot=true',
               '-o', '/tmp/tulip_echo_aot', '--nologo', '-v', 'q'], capture_output=True, text=True)
    if aot.returncode != 0:
        errors = sorted({l.strip().split(': error ', 1)[-1].split(' [')[0] for l in aot.stdout.splitlines() if ': error ' in l})
        out('Native AOT publish failed: ' + ('; '.join(errors) or aot.stdout[-500:]))
        if os.path.exists('/tmp/tulip_echo_aot/EchoServer'):
            os.remove('/tmp/tulip_echo_aot/EchoServer')
    else:
        out('Native AOT publish: /tmp/tulip_echo_aot/EchoServer')
    if shutil.which('node') is None:
        sys.exit('run.py: node is not on PATH')
    if run([PY, '-c', 'import uvloop'], capture_output=True).returncode != 0:
        sys.exit('run.py: /usr/bin/python3 has no uvloop: apt-get install -y python3-uvloop')


# ---- helpers -------------------------------------------------------------------------------------

class Server:
    """One server pinned to CPU 0, started in its own session so the whole group can be stopped."""

    def __init__(self, cmd, port, env=None, prefix=(), stderr=subprocess.DEVNULL):
        self.port = port
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(list(prefix) + ['taskset', '-c', '0'] + shlex.split(cmd.format(port=port)),
                                     stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True,
                                     env=dict(os.environ, **(env or {})))

    def wait_echo(self, timeout=60):
        """Waits until one byte comes back; returns seconds since start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f'server exited with {self.proc.returncode}')
            try:
                with socket.create_connection(('127.0.0.1', self.port), timeout=5) as s:
                    s.sendall(b'x')
                    if s.recv(1) == b'x':
                        return time.monotonic() - self.t0
            except OSError:
                time.sleep(0.001)
        raise RuntimeError('server did not echo')

    def pid(self):
        """The server's own pid (the child of taskset, which execs; of strace, which forks)."""
        return self.proc.pid

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def loadgen(port, conns, size, duration, warmup):
    res = subprocess.run(['taskset', '-c', '1', LOADGEN, '127.0.0.1', str(port), str(conns), str(size), str(duration),
                          str(warmup)], capture_output=True, text=True, timeout=duration + warmup + 60)
    if res.returncode != 0:
        raise RuntimeError(f'loadgen failed: {res.stderr.strip()}')
    return json.loads(res.stdout)


_port = [26000 + os.getpid() % 2000]


def next_port():
    _port[0] += 1
    return _port[0]


def rss_kib(pid):
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    raise RuntimeError(f'no VmRSS for {pid}')


def fmt(n, digits=0):
    return f'{n:,.{digits}f}'


# ---- throughput ----------------------------------------------------------------------------------

def throughput():
    duration, warmup, rounds = (1, 0.5, 1) if QUICK else (5, 2, 3)
    bench = os.path.join(SHARED, 'echo_bench.py')
    for conns, size in SHAPES:
        args = [sys.executable, bench, '--conns', str(conns), '--size', str(size), '--duration', str(duration),
                '--warmup', str(warmup), '--rounds', str(rounds), '--port', str(next_port() + 100), '--json']
        args += [f'{name}={cmd}' for name, cmd in SERVERS.items()]
        _port[0] += 200
        before = loadavg()
        res = run(args, capture_output=True, text=True)
        after = loadavg()
        if res.returncode != 0:
            raise RuntimeError(f'echo_bench.py failed: {res.stderr[-2000:]}')
        summary = json.loads(res.stdout)['servers']
        per_round = {name: [] for name in SERVERS}
        for line in res.stderr.splitlines():
            if line.startswith('round '):
                head, _, rest = line.partition(': ')
                name = head.split(' ', 2)[2]
                value = ast.literal_eval(rest)
                if 'rps' in value:
                    per_round[name].append(value['rps'])
        unit = 'MiB/s' if size >= 65536 else 'req/s'
        out(f'### {conns} connections x {size // 1024} KiB ({rounds} rounds of {duration:g} s, median)')
        out()
        out(f'Load average before / after: {before} / {after}')
        out()
        out('    ' + shlex.join(['echo_bench.py'] + args[2:-len(SERVERS)]) + ' NAME=CMD... (the servers above run.py names)')
        out()
        base = summary['c-epoll'].get('rps')
        base2 = summary['c-io_uring'].get('rps')
        out(f'| server | req/s | MiB/s | p50 µs | p99 µs | vs c-epoll | vs c-io_uring | rounds (req/s) |')
        out('|---|---:|---:|---:|---:|---:|---:|---|')
        for name in SERVERS:
            s = summary[name]
            if 'error' in s:
                out(f'| {name} | error: {s["error"]} | | | | | | |')
                continue
            rounds_txt = ', '.join(fmt(r) for r in per_round[name])
            vs2 = f'{s["rps"] / base2:.2f}x' if base2 else '-'
            out(f'| {name} | {fmt(s["rps"])} | {fmt(s["mib_s"], 1)} | {fmt(s["p50_us"])} | {fmt(s["p99_us"])} | '
                f'{s["rps"] / base:.2f}x | {vs2} | {rounds_txt} |')
        t = {k: summary[k].get('rps') for k in SERVERS}
        ours = ('c-epoll', 'c-io_uring', 'tulip', 'tulip-buffered', 'tulip-io_uring', 'tulip-io_uring-ring')
        others = [k for k in SERVERS if k not in ours and t[k]]
        best_other = max(others, key=lambda k: t[k]) if others else None
        out()

        def ratio(a, b):
            return f'{t[a] / t[b]:.2f}x' if t.get(a) and t.get(b) else '-'
        line = f'tulip: {ratio("tulip", "c-epoll")} c-epoll, {ratio("tulip", "uvloop")} uvloop, {ratio("tulip", "kestrel")} kestrel'
        if best_other:
            line += f', {ratio("tulip", best_other)} the best other peer ({best_other})'
        line += f'; buffered / protocol {ratio("tulip-buffered", "tulip")}'
        line += (f'; tulip-io_uring: {ratio("tulip-io_uring", "c-epoll")} c-epoll, {ratio("tulip-io_uring", "c-io_uring")}'
                 f' c-io_uring, {ratio("tulip-io_uring", "tulip")} tulip on epoll; c-io_uring / c-epoll {ratio("c-io_uring", "c-epoll")}')
        out(line)
        out()


# ---- allocations ---------------------------------------------------------------------------------

def alloc():
    duration = 3 if QUICK else 8
    skip = 1 if QUICK else 3  # windows that include connection setup and the JIT's tier-up
    loop = os.environ.get('LOOP', 'epoll')
    out(f'Loop: {loop}. Load average before: {loadavg()}')
    out()
    out('| shape | mode | reads in window | loop thread allocated | per read | process allocated | gen0 GCs |')
    out('|---|---|---:|---:|---:|---:|---:|')
    for conns, size in SHAPES:
        for mode in ('protocol', 'buffered'):
            port = next_port()
            with tempfile.TemporaryFile('w+') as err:
                srv = Server(ECHO_BIN + ' {port} ' + mode + ' ' + loop, port, env={'TULIP_ECHO_STATS': '1'}, stderr=err)
                try:
                    srv.wait_echo()
                    loadgen(port, conns, size, duration, 0)
                finally:
                    srv.stop()
                err.seek(0)
                lines = [l for l in err.read().splitlines() if l.startswith('echo-stats:')]
            # echo-stats: 1.00 s, N reads, C connections, loop thread allocated B B (x B/read), process allocated P B, gen0 GCs G
            steady = [l for l in lines if f' {conns} connections' in l][skip:]
            reads = thread = proc = gcs = 0
            for l in steady:
                f = l.replace(',', '').split()
                reads += int(f[3])
                thread += int(f[10])
                proc += int(f[16])
                gcs += int(f[20])
            per = thread / reads if reads else float('nan')
            out(f'| {conns} x {size // 1024} KiB | {mode} | {fmt(reads)} ({len(steady)} windows of 1 s) | {fmt(thread)} B | '
                f'{per:.3f} B | {fmt(proc)} B | {gcs} |')
    out()
    out(f'Load average after: {loadavg()}')
    out()


# ---- syscalls ------------------------------------------------------------------------------------

SYSCALL_SERVERS = ['tulip', 'tulip-io_uring', 'tulip-io_uring-ring', 'tulip-buffered', 'c-epoll', 'c-io_uring', 'uvloop']
READS = ('read', 'recvfrom', 'recvmsg', 'readv')
WRITES = ('write', 'sendto', 'sendmsg', 'writev')
WAITS = ('epoll_wait', 'epoll_pwait', 'epoll_pwait2')
URING = 'io_uring_enter'  # submits and waits in one call


def custom_servers(default):
    """NAME=CMD arguments if any were given, else the named servers of SERVERS."""
    custom = [tuple(a.split('=', 1)) for a in sys.argv[1:] if '=' in a and not a.startswith('--')]
    return custom or [(k, SERVERS[k]) for k in default]


def direct_cmd(name):
    return SERVERS[name]


def parse_strace(path):
    counts = {}
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) >= 5 and p[0][0].isdigit() and not p[-1].startswith('-') and p[-1] != 'total':
                counts[p[-1]] = int(p[3])
    return counts


def syscalls():
    servers = custom_servers(SYSCALL_SERVERS)
    conns = int(os.environ.get('CONNS', 10))
    size = int(os.environ.get('SIZE', 1024))
    duration = 2 if QUICK else 5
    out(f'Load average before: {loadavg()}')
    out()
    out(f'strace -c -f over a whole run ({conns} connections x {size} B, {duration} s of load; start-up and'
        ' shutdown included; echoes counted by the load generator):')
    out()
    out('| server | echoes | read-like | write-like | epoll_wait | epoll_ctl | io_uring_enter | all syscalls | reads/echo | writes/echo | waits/echo | epoll_ctl/echo | io_uring_enter/echo | all/echo |')
    out('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    for name, cmd in servers:
        port = next_port()
        with tempfile.NamedTemporaryFile(suffix='.strace') as tf:
            srv = Server(cmd, port, prefix=['strace', '-c', '-f', '-o', tf.name])
            try:
                srv.wait_echo()
                res = loadgen(port, conns, size, duration, 0)
            finally:
                srv.stop()  # strace forwards nothing: the group gets SIGTERM, strace writes its table
            c = parse_strace(tf.name)
        echoes = res['rps'] * duration
        r = sum(c.get(k, 0) for k in READS)
        w = sum(c.get(k, 0) for k in WRITES)
        wt = sum(c.get(k, 0) for k in WAITS)
        ctl = c.get('epoll_ctl', 0)
        ur = c.get(URING, 0)
        total = sum(c.values())
        names = '/'.join(k for k in READS + WRITES if c.get(k, 0) * 100 >= echoes)  # not the loader's few reads
        out(f'| {name} ({names or URING}) | {fmt(echoes)} | {fmt(r)} | {fmt(w)} | {fmt(wt)} | {fmt(ctl)} | {fmt(ur)} | '
            f'{fmt(total)} | {r / echoes:.3f} | {w / echoes:.3f} | {wt / echoes:.3f} | {ctl / echoes:.5f} | '
            f'{ur / echoes:.3f} | {total / echoes:.3f} |')
    out()
    if shutil.which('perf') is None:
        out('(perf is not installed: the unperturbed counts are skipped; apt-get install -y linux-perf)')
        return
    events = [f'syscalls:sys_enter_{k}' for k in READS + WRITES + WAITS + ('epoll_ctl', URING)] + ['raw_syscalls:sys_enter']
    out(f'perf stat with the syscall tracepoints, attached to the running server for {duration} s of steady load'
        ' (no ptrace, so the server runs at full speed and batches as it does unobserved):')
    out()
    out('| server | echoes | reads/echo | writes/echo | epoll_wait/echo | epoll_ctl in window | io_uring_enter/echo | syscalls/echo |')
    out('|---|---:|---:|---:|---:|---:|---:|---:|')
    for name, cmd in servers:
        port = next_port()
        srv = Server(cmd, port)
        try:
            srv.wait_echo()
            lg = subprocess.Popen(['taskset', '-c', '1', LOADGEN, '127.0.0.1', str(port), str(conns), str(size),
                                   str(duration + 1), '1'], stdout=subprocess.PIPE, text=True)
            time.sleep(1)  # the load generator's warm-up; it runs a second past the window, so its closes fall outside
            perf = subprocess.run(['perf', 'stat', '-x', ',', '-e', ','.join(events), '-p', str(srv.pid()), '--',
                                   'sleep', str(duration)], capture_output=True, text=True)
            res = json.loads(lg.communicate()[0])
        finally:
            srv.stop()
        c = {}
        for line in perf.stderr.splitlines():
            p = line.split(',')
            if len(p) > 2 and p[0].strip().isdigit():
                c[p[2].split(':')[-1].replace('sys_enter_', '')] = int(p[0])
        echoes = res['rps'] * duration
        r = sum(c.get(k, 0) for k in READS)
        w = sum(c.get(k, 0) for k in WRITES)
        wt = sum(c.get(k, 0) for k in WAITS)
        out(f'| {name} | {fmt(echoes)} | {r / echoes:.3f} | {w / echoes:.3f} | {wt / echoes:.3f} | {c.get("epoll_ctl", 0)} | '
            f'{c.get(URING, 0) / echoes:.3f} | {c.get("sys_enter", 0) / echoes:.3f} |')
    out()
    out(f'Load average after: {loadavg()}')
    out()


# ---- idle connections ----------------------------------------------------------------------------

IDLE_SERVERS = ['tulip', 'uvloop', 'asyncio', 'c-epoll', 'c-io_uring', 'node', 'dotnet-sockets']


def tulip_heap(srv, err):
    """Sends SIGUSR1 to the Tulip echo server and reads the managed heap it reports (after a full GC)."""
    err.seek(0, os.SEEK_END)
    pos = err.tell()
    os.kill(srv.pid(), signal.SIGUSR1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        err.seek(pos)
        for line in err.read().splitlines():
            if line.startswith('echo-memory:'):
                f = line.replace(',', '').split()
                return int(f[2]), int(f[5])  # connections, managed heap bytes
        time.sleep(0.05)
    raise RuntimeError('the echo server did not report its memory')


def idle():
    n = 1000 if QUICK else 10000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < n + 64:
        sys.exit(f'run.py: RLIMIT_NOFILE hard limit {hard} is below {n} connections; raise it first')
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the servers inherit it
    out(f'Load average before: {loadavg()}')
    out()
    out(f'| server | RSS before | RSS with {n:,} idle | RSS per connection | managed heap before | with {n:,} | managed heap per connection |')
    out('|---|---:|---:|---:|---:|---:|---:|')
    for name, cmd in custom_servers(IDLE_SERVERS):
        port = next_port()
        is_tulip = name.startswith('tulip')  # a Tulip echo server reports its managed heap on SIGUSR1
        with tempfile.TemporaryFile('w+') as err:
            srv = Server(cmd, port, env={'TULIP_ECHO_STATS': '1'} if is_tulip else None,
                         stderr=err if is_tulip else subprocess.DEVNULL)
            client = None
            try:
                srv.wait_echo()
                # Warm the connection path once, so what is measured is per connection, not first use.
                warm = subprocess.Popen([PY, os.path.join(ROOT, 'bench', 'echo', 'idle_conns.py'), str(port), '100'],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                warm.stdout.readline()
                warm.stdin.close()
                warm.wait()
                time.sleep(1)
                heap0 = tulip_heap(srv, err)[1] if is_tulip else None
                rss0 = rss_kib(srv.pid())
                client = subprocess.Popen(['taskset', '-c', '1', PY, os.path.join(ROOT, 'bench', 'echo', 'idle_conns.py'),
                                           str(port), str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                ready = client.stdout.readline().strip()
                if ready != f'ready {n}':
                    raise RuntimeError(f'idle_conns.py: {ready!r}')
                time.sleep(1)
                heap1 = None
                if is_tulip:
                    conns, heap1 = tulip_heap(srv, err)
                    if conns != n:
                        raise RuntimeError(f'the server reports {conns} connections, not {n}')
                rss1 = rss_kib(srv.pid())
            finally:
                if client is not None:
                    client.stdin.close()
                    client.wait()
                srv.stop()
        per = (rss1 - rss0) * 1024 / n
        heap_cols = (f'{fmt(heap0 / 1024)} KiB | {fmt(heap1 / 1024)} KiB | {fmt((heap1 - heap0) / n)} B'
                     if is_tulip else '- | - | -')
        out(f'| {name} | {fmt(rss0)} KiB | {fmt(rss1)} KiB | {fmt(per)} B | {heap_cols} |')
    out()
    out(f'Load average after: {loadavg()}')
    out()


# ---- startup -------------------------------------------------------------------------------------

def startup():
    reps = 2 if QUICK else 5
    servers = [
        ('c-epoll', SERVERS['c-epoll']),
        ('tulip (JIT)', f'{ECHO_BIN} {{port}} protocol epoll'),
        ('tulip (ReadyToRun)', '/tmp/tulip_echo_r2r/EchoServer {port} protocol epoll'),
        ('tulip (trimmed, self-contained)', '/tmp/tulip_echo_trim/EchoServer {port} protocol epoll'),
    ]
    if os.path.exists('/tmp/tulip_echo_aot/EchoServer'):
        servers.append(('tulip (Native AOT)', '/tmp/tulip_echo_aot/EchoServer {port} protocol epoll'))
    servers += [(k, SERVERS[k]) for k in ('uvloop', 'asyncio', 'node', 'dotnet-sockets', 'kestrel')]
    out(f'Load average before: {loadavg()}')
    out()
    out(f'| server | start → first echo, median of {reps} (ms) | min | max |')
    out('|---|---:|---:|---:|')
    for name, cmd in servers:
        times = []
        for _ in range(reps):
            srv = Server(cmd, next_port())
            try:
                times.append(srv.wait_echo() * 1000)
            finally:
                srv.stop()
        out(f'| {name} | {statistics.median(times):.0f} | {min(times):.0f} | {max(times):.0f} |')
    out()
    out(f'Load average after: {loadavg()}')
    out()


# ---- CPU time per echo ---------------------------------------------------------------------------

def cpu_ticks(pid):
    """User and system CPU of the whole process (all threads), in clock ticks, from /proc/PID/stat."""
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return int(fields[11]), int(fields[12])


def cpu():
    """Server CPU time per echo: less sensitive to the other core's load than req/s, for A/B runs."""
    servers = custom_servers(('c-epoll', 'c-io_uring', 'tulip', 'tulip-io_uring', 'tulip-io_uring-ring', 'tulip-buffered', 'uvloop'))
    conns = int(os.environ.get('CONNS', 10))
    size = int(os.environ.get('SIZE', 1024))
    duration, rounds = (2, 1) if QUICK else (5, 3)
    hz = os.sysconf('SC_CLK_TCK')
    out(f'Load average before: {loadavg()}')
    out()
    out(f'{conns} connections x {size} B; server CPU over {duration} s of steady load, median of {rounds} rounds (rotating order)')
    out()
    out('| server | req/s | user µs/echo | sys µs/echo | total µs/echo | rounds (total µs/echo) |')
    out('|---|---:|---:|---:|---:|---|')
    results = {name: [] for name, _ in servers}
    for r in range(rounds):
        for name, cmd in servers[r % len(servers):] + servers[:r % len(servers)]:
            port = next_port()
            srv = Server(cmd, port)
            try:
                srv.wait_echo()
                lg = subprocess.Popen(['taskset', '-c', '1', LOADGEN, '127.0.0.1', str(port), str(conns), str(size),
                                       str(duration), '2'], stdout=subprocess.PIPE, text=True)
                time.sleep(2)
                u0, s0 = cpu_ticks(srv.pid())
                time.sleep(duration)
                u1, s1 = cpu_ticks(srv.pid())
                res = json.loads(lg.communicate()[0])
            finally:
                srv.stop()
            echoes = res['rps'] * duration
            results[name].append((res['rps'], (u1 - u0) / hz * 1e6 / echoes, (s1 - s0) / hz * 1e6 / echoes))
    for name, _ in servers:
        rs = results[name]
        totals = [u + s for _, u, s in rs]
        out(f'| {name} | {fmt(statistics.median(x[0] for x in rs))} | {statistics.median(x[1] for x in rs):.2f} | '
            f'{statistics.median(x[2] for x in rs):.2f} | {statistics.median(totals):.2f} | {", ".join(f"{t:.2f}" for t in totals)} |')
    out()
    out(f'Load average after: {loadavg()}')
    out()


# ---- instructions per echo (callgrind) ---------------------------------------------------------

def instructions():
    """User-space instructions per echo under callgrind: immune to the other engineers' load."""
    servers = custom_servers(('c-epoll', 'c-io_uring', 'tulip', 'tulip-io_uring', 'tulip-io_uring-ring', 'tulip-buffered', 'uvloop'))
    conns = int(os.environ.get('CONNS', 10))
    size = int(os.environ.get('SIZE', 1024))
    warm, duration = (5, 2) if QUICK else (20, 10)
    out(f'{conns} connections x {size} B; every thread of the server under valgrind --tool=callgrind, counters zeroed'
        f' after {warm} s of load (JIT tier-up done), then {duration} s counted')
    out()
    out('| server | echoes counted | loop thread instructions | per echo, loop thread | per echo, all threads |')
    out('|---|---:|---:|---:|---:|')
    for name, cmd in servers:
        port = next_port()
        with tempfile.TemporaryDirectory() as d:
            cg = os.path.join(d, 'cg.out')
            # taskset execs valgrind, which runs the server in its own process: srv.pid() is the one to control
            srv = Server(f'valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file={cg} ' + cmd, port,
                         env={'DOTNET_EnableWriteXorExecute': '0'})
            try:
                srv.wait_echo(timeout=120)
                loadgen(port, conns, size, warm, 0)
                run(['callgrind_control', '-z', str(srv.pid())], capture_output=True, check=True)
                res = loadgen(port, conns, size, duration, 0)
                run(['callgrind_control', '-d', str(srv.pid())], capture_output=True, check=True)
            finally:
                srv.stop()
            per_thread = []
            for f in os.listdir(d):
                if f.startswith('cg.out.'):
                    with open(os.path.join(d, f)) as fh:
                        for line in fh:
                            if line.startswith('totals:'):
                                per_thread.append(int(line.split()[1]))
        # The busiest thread is the loop's; the rest is the runtime's (tiered JIT compiling in the
        # background, which under valgrind's slowdown is still at work after the warm-up).
        total, loop = sum(per_thread), max(per_thread, default=0)
        echoes = res['rps'] * duration
        out(f'| {name} | {fmt(echoes)} | {fmt(loop)} | {fmt(loop / echoes)} | {fmt(total / echoes)} |')
    out()


SECTIONS = {'build': build, 'throughput': throughput, 'alloc': alloc, 'syscalls': syscalls, 'idle': idle,
            'startup': startup, 'cpu': cpu, 'instructions': instructions}


def main():
    wanted = [a for a in sys.argv[1:] if not a.startswith('--') and '=' not in a] or ['all']
    if 'all' in wanted:
        wanted = [w for w in SECTIONS if w not in ('cpu', 'instructions')]
    unknown = [w for w in wanted if w not in SECTIONS]
    if unknown:
        sys.exit(f'run.py: unknown section {unknown[0]!r}; expected one of {", ".join(SECTIONS)} or all')
    if any(w != 'build' for w in wanted):
        ensure_tulip()
        ensure_uring_floor()
    for w in wanted:
        out(f'## {w}')
        out()
        SECTIONS[w]()


if __name__ == '__main__':
    main()
