#!/usr/bin/env python3
"""The TLS echo benchmarks of docs/PERFORMANCE.md: Tulip beside every TLS peer, from one command.

usage: bench/tls/run.py [build|throughput|alloc|syscalls|idle|all] ... [--quick] [--rounds R] [--only a,b]

  build       gcc the TLS load generator and the C epoll + OpenSSL floor (to /tmp), dotnet publish the
              .NET TLS peers (/tmp/dotnet_tls_echo) and the allocation probe (/tmp/tls_alloc_probe), build
              Tulip's TLS echo server (scripts/tls-echo-server, .build/tls-echo-server), check node and
              /usr/bin/python3 with uvloop
  throughput  every server in one run, rounds rotating the order, for 10 x 1 KiB and 100 x 1 KiB:
              req/s (median), latency, and the server's CPU time per echo (/proc/PID/stat over the
              measured window), with ratios to the C floor, and Tulip against uvloop and Kestrel
  alloc       managed bytes the whole server process allocates per echo in steady state, for Tulip and
              Kestrel (a startup hook, AllocProbe/, loaded with DOTNET_STARTUP_HOOKS: the servers run
              unchanged), with the types the runtime's AllocationTick events name
  syscalls    strace -c -f over a run (10 x 1 KiB) of tulip, the C floor, uvloop and kestrel: syscalls per echo
  idle        10,000 idle TLS connections held (bench/echo/idle_conns.py --tls): RSS per connection of
              every server, and Tulip's managed heap per connection
  all         all of the above, in that order

Every server runs pinned to CPU 0 and the load generator to CPU 1. The certificate is made at run time
(openssl req: a self-signed ECDSA P-256 certificate for localhost and 127.0.0.1, in a temporary folder
removed at the end); the load generator negotiates TLS 1.3 only and does not verify it. Every section
prints Markdown with the command behind it and the load average before and after (/proc/loadavg): the
machine is shared, so re-run a section whose load was high. --quick shortens every run, to check the
runner itself; its figures are not results. --only names a subset of the servers (throughput, idle).
"""
import json, os, resource, shlex, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PY = '/usr/bin/python3'
QUICK = '--quick' in sys.argv
TMP = os.environ.get('TMPDIR', '/tmp')
LOADGEN = os.path.join(TMP, 'tls-loadgen')
C_FLOOR = os.path.join(TMP, 'c_epoll_tls_echo')
DOTNET_PEERS = os.path.join(TMP, 'dotnet_tls_echo')
PROBE = os.path.join(TMP, 'tls_alloc_probe', 'AllocProbe.dll')
TULIP_BIN = os.path.join(ROOT, '.build', 'tls-echo-server', 'TlsEchoServer')
PEERS = os.path.join(HERE, 'peers')


def arg_value(flag, default):
    if flag in sys.argv:
        return sys.argv[sys.argv.index(flag) + 1]
    return default


# name -> server command ({port}, {cert}, {key} are replaced). The first is the baseline of every ratio.
SERVERS = {
    'c-openssl': f'{C_FLOOR} {{port}} {{cert}} {{key}}',
    # scripts/tls-echo-server execs this binary; run directly, so a source edited during a run cannot
    # make the wrapper rebuild between rounds (ensure_tulip builds it once, before the section).
    'tulip': f'{TULIP_BIN} {{port}} {{cert}} {{key}}',
    'uvloop': f'{PY} {PEERS}/asyncio_tls_echo.py {{port}} {{cert}} {{key}} uvloop',
    'asyncio': f'{PY} {PEERS}/asyncio_tls_echo.py {{port}} {{cert}} {{key}} asyncio',
    'node': f'node {PEERS}/node_tls_echo.js {{port}} {{cert}} {{key}}',
    'kestrel': f'{DOTNET_PEERS}/dotnet_tls_echo {{port}} {{cert}} {{key}} kestrel',
    'dotnet-sslstream': f'{DOTNET_PEERS}/dotnet_tls_echo {{port}} {{cert}} {{key}} sslstream',
}
SHAPES = [(10, 1024), (100, 1024)]


def selected(names):
    only = arg_value('--only', None)
    if only is None:
        return list(names)
    wanted = only.split(',')
    unknown = [w for w in wanted if w not in SERVERS]
    if unknown:
        sys.exit(f'run.py: unknown server {unknown[0]!r}; known: {", ".join(SERVERS)}')
    return [n for n in names if n in wanted]


def loadavg():
    with open('/proc/loadavg') as f:
        return ' '.join(f.read().split()[:3])


def out(line=''):
    print(line, flush=True)


def run(cmd, **kw):
    """Runs a helper command; its output goes to stderr unless captured, so stdout is only the tables."""
    print('$ ' + shlex.join(cmd), file=sys.stderr, flush=True)
    if 'capture_output' not in kw and 'stdout' not in kw:
        kw['stdout'] = sys.stderr
    return subprocess.run(cmd, **kw)


def fmt(n, digits=0):
    return f'{n:,.{digits}f}'


# ---- build ---------------------------------------------------------------------------------------

def ensure_tulip():
    """Builds Tulip's TLS echo server if a source changed (what scripts/tls-echo-server does on each start)."""
    script = os.path.join(ROOT, 'scripts', 'tls-echo-server')
    if not os.path.exists(script):
        sys.exit('run.py: scripts/tls-echo-server is missing')
    run([script, '0', 'x', 'y'], capture_output=True)  # builds when stale, then exits 2 on port 0
    if not os.path.exists(TULIP_BIN):
        sys.exit('run.py: the Tulip TLS echo server did not build; run scripts/tls-echo-server to see why')


def build():
    for src, exe in ((os.path.join(HERE, 'tls_loadgen.c'), LOADGEN), (os.path.join(PEERS, 'c_epoll_tls_echo.c'), C_FLOOR)):
        run(['gcc', '-O2', '-o', exe, src, '-lssl', '-lcrypto'], check=True)
    run(['dotnet', 'publish', '-c', 'Release', '-o', DOTNET_PEERS, os.path.join(PEERS, 'dotnet_tls_echo'), '--nologo', '-v', 'q'],
        check=True)
    run(['dotnet', 'build', '-c', 'Release', '-o', os.path.dirname(PROBE), os.path.join(HERE, 'AllocProbe'), '--nologo', '-v', 'q',
         '-clp:ErrorsOnly'], check=True)
    ensure_tulip()
    if shutil.which('node') is None:
        sys.exit('run.py: node is not on PATH')
    if run([PY, '-c', 'import uvloop'], capture_output=True).returncode != 0:
        sys.exit('run.py: /usr/bin/python3 has no uvloop: apt-get install -y python3-uvloop')
    out('built: ' + ', '.join([LOADGEN, C_FLOOR, DOTNET_PEERS, PROBE, TULIP_BIN]))


def make_cert(folder):
    cert, key = os.path.join(folder, 'cert.pem'), os.path.join(folder, 'key.pem')
    run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
         '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', cert],
        capture_output=True, check=True)
    return cert, key


# ---- helpers -------------------------------------------------------------------------------------

_port = [28000 + os.getpid() % 2000]


def next_port():
    _port[0] += 1
    return _port[0]


class Server:
    """One server pinned to CPU 0, in its own session so the whole group can be stopped."""

    def __init__(self, cmd, tls, env=None, prefix=(), stderr=subprocess.DEVNULL):
        self.port = next_port()
        argv = shlex.split(cmd.format(port=self.port, cert=tls[0], key=tls[1]))
        self.proc = subprocess.Popen(list(prefix) + ['taskset', '-c', '0'] + argv, stdout=subprocess.DEVNULL, stderr=stderr,
                                     start_new_session=True, env=dict(os.environ, **(env or {})))

    def wait_listening(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f'server exited with {self.proc.returncode}')
            try:
                socket.create_connection(('127.0.0.1', self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError('server did not start listening')

    def pid(self):
        return self.proc.pid  # taskset execs the server (and strace, when it is the prefix)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def cpu_ticks(pid):
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_kib(pid):
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    raise RuntimeError(f'no VmRSS for {pid}')


def drive(srv, conns, size, duration, warmup, on_window=None):
    """Runs the load generator against srv; returns its JSON result plus the server's CPU µs per echo over
    the measured window. on_window(start: bool) is called when the window opens and when it closes."""
    lg = subprocess.Popen(['taskset', '-c', '1', LOADGEN, '127.0.0.1', str(srv.port), str(conns), str(size), str(duration),
                           str(warmup)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(warmup + 0.3)  # the connections and handshakes come first, inside the warm-up
    t0 = cpu_ticks(srv.pid())
    if on_window:
        on_window(True)
    time.sleep(duration - 0.6)
    t1 = cpu_ticks(srv.pid())
    if on_window:
        on_window(False)
    stdout, stderr = lg.communicate(timeout=duration + warmup + 60)
    if lg.returncode != 0:
        raise RuntimeError(f'tls-loadgen failed: {stderr.strip()}')
    res = json.loads(stdout)
    hz = os.sysconf('SC_CLK_TCK')
    res['cpu_us'] = (t1 - t0) / hz * 1e6 / (res['rps'] * (duration - 0.6)) if res['rps'] else float('nan')
    return res


# ---- throughput ----------------------------------------------------------------------------------

def throughput(tls):
    duration, warmup = (1.5, 1, ) if QUICK else (5, 2)
    rounds = int(arg_value('--rounds', 1 if QUICK else 3))
    names = selected(SERVERS)
    for conns, size in SHAPES:
        before = loadavg()
        results = {n: [] for n in names}
        for r in range(rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                srv = Server(SERVERS[name], tls)
                try:
                    srv.wait_listening()
                    res = drive(srv, conns, size, duration, warmup)
                except RuntimeError as e:
                    res = {'error': str(e)}
                finally:
                    srv.stop()
                results[name].append(res)
                print(f'round {r + 1} {name}: {res}', file=sys.stderr, flush=True)
        after = loadavg()
        out(f'### {conns} connections x {size // 1024} KiB, TLS 1.3 ({rounds} rounds of {duration:g} s, median)')
        out()
        out(f'Load average before / after: {before} / {after}')
        out()
        out('    ' + shlex.join(['bench/tls/run.py', 'throughput'] + [a for a in sys.argv[1:] if a.startswith('--')]))
        out()
        summary = {}
        for name in names:
            ok = [x for x in results[name] if 'rps' in x and x['rps'] > 0]
            if ok:
                summary[name] = {k: statistics.median(x[k] for x in ok) for k in ('rps', 'mib_s', 'p50_us', 'p99_us', 'cpu_us')}
                summary[name]['cipher'] = ok[0].get('cipher')
        base = summary.get(names[0], {}).get('rps')
        out(f'| server | req/s | MiB/s | p50 µs | p99 µs | server CPU µs/echo | vs {names[0]} | rounds (req/s) |')
        out('|---|---:|---:|---:|---:|---:|---:|---|')
        for name in names:
            if name not in summary:
                out(f'| {name} | error: {results[name][-1].get("error")} | | | | | | |')
                continue
            s = summary[name]
            ratio = f'{s["rps"] / base:.2f}x' if base else '-'
            rounds_txt = ', '.join(fmt(x['rps']) for x in results[name] if 'rps' in x)
            out(f'| {name} | {fmt(s["rps"])} | {fmt(s["mib_s"], 1)} | {fmt(s["p50_us"])} | {fmt(s["p99_us"])} | '
                f'{s["cpu_us"]:.2f} | {ratio} | {rounds_txt} |')
        out()
        ciphers = sorted({s['cipher'] for s in summary.values() if s.get('cipher')})
        out(f'Negotiated: TLS 1.3, {", ".join(ciphers)}.')
        if 'tulip' in summary:
            t = summary['tulip']
            parts = [f'{t["rps"] / summary[o]["rps"]:.2f}x {o}' for o in ('c-openssl', 'uvloop', 'kestrel', 'node') if o in summary]
            cpu = ', '.join(f'{o} {summary[o]["cpu_us"]:.2f}' for o in ('tulip', 'c-openssl', 'uvloop', 'kestrel') if o in summary)
            out(f'tulip req/s: {", ".join(parts)}. Server CPU µs per echo: {cpu}.')
        out()


# ---- allocations ---------------------------------------------------------------------------------

def parse_probe(lines):
    """alloc-probe: T s, allocated B B, gen0 G, gen1 G, gen2 G, pause P ms"""
    rows = []
    for line in lines:
        if line.startswith('alloc-probe: '):
            f = line.replace(',', '').split()
            rows.append((float(f[1]), int(f[4]), int(f[7]), int(f[9]), int(f[11]), float(f[13])))
    return rows


def alloc(tls):
    duration, warmup = (3, 2) if QUICK else (8, 4)
    out(f'Load average before: {loadavg()}')
    out()
    out('    ' + shlex.join(['bench/tls/run.py', 'alloc']) + f'   # DOTNET_STARTUP_HOOKS={PROBE}, {duration} s windows after {warmup} s')
    out()
    out('| server | shape | echoes in window | process allocated | per echo | gen0 / gen1 / gen2 GCs | GC pause | types sampled (AllocationTick) |')
    out('|---|---|---:|---:|---:|---:|---:|---|')
    for name in ('tulip', 'kestrel'):
        for conns, size in SHAPES:
            for types in (False, True):
                env = {'DOTNET_STARTUP_HOOKS': PROBE, 'ALLOC_PROBE_TYPES': '1' if types else '0'}
                with tempfile.TemporaryFile('w+') as err:
                    srv = Server(SERVERS[name], tls, env=env, stderr=err)
                    marks = []  # probe lines written when the measured window opened and closed

                    def mark(_start, err=err, marks=marks):
                        err.seek(0)
                        marks.append(len(err.read().splitlines()))

                    try:
                        srv.wait_listening()
                        res = drive(srv, conns, size, duration, warmup, on_window=mark)
                    finally:
                        srv.stop()
                    err.seek(0)
                    lines = err.read().splitlines()
                # The probe's 1 s windows that began after the measured window opened and ended before it closed.
                inside = lines[marks[0]:marks[1]]
                rows = parse_probe(inside)[1:]
                if types:
                    tallies = [l.split(': ', 1)[1] for l in inside if l.startswith('alloc-probe-types: ')]
                    sample = ' '.join(t for t in tallies if t)[:300] or '(none)'
                    out(f'| {name} | {conns} x {size // 1024} KiB | | | | | | {sample} |')
                    continue
                steady = rows
                secs = len(steady)
                b = sum(r[1] for r in steady)
                echoes = res['rps'] * secs
                gcs = '/'.join(str(sum(r[i] for r in steady)) for i in (2, 3, 4))
                pause = sum(r[5] for r in steady)
                out(f'| {name} | {conns} x {size // 1024} KiB | {fmt(echoes)} ({secs} windows of 1 s) | {fmt(b)} B | '
                    f'{b / echoes if echoes else float("nan"):.3f} B | {gcs} | {pause:.1f} ms | |')
    out()
    out(f'Load average after: {loadavg()}')
    out()


# ---- syscalls ------------------------------------------------------------------------------------

READS = ('read', 'recvfrom', 'recvmsg', 'readv')
WRITES = ('write', 'sendto', 'sendmsg', 'writev')
WAITS = ('epoll_wait', 'epoll_pwait', 'epoll_pwait2')


def parse_strace(path):
    counts = {}
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) >= 5 and p[0][0].isdigit() and p[-1] != 'total':
                counts[p[-1]] = int(p[3])
    return counts


def syscalls(tls):
    duration = 2 if QUICK else 5
    conns, size = 10, 1024
    out(f'Load average before: {loadavg()}')
    out()
    out(f'strace -c -f over {duration} s of {conns} x {size} B echoes (connections and handshakes included; strace slows'
        ' every syscall, so the server batches differently than unobserved: the counts per echo are what to read)')
    out()
    out('| server | echoes | reads/echo | writes/echo | epoll_wait/echo | futex/echo | all syscalls/echo |')
    out('|---|---:|---:|---:|---:|---:|---:|')
    for name in selected(['tulip', 'c-openssl', 'uvloop', 'kestrel']):
        with tempfile.NamedTemporaryFile(suffix='.strace') as tf:
            srv = Server(SERVERS[name], tls, prefix=['strace', '-c', '-f', '-o', tf.name])
            try:
                srv.wait_listening()
                lg = subprocess.run(['taskset', '-c', '1', LOADGEN, '127.0.0.1', str(srv.port), str(conns), str(size), str(duration),
                                     '0'], capture_output=True, text=True, timeout=duration + 60)
                res = json.loads(lg.stdout)
            finally:
                # strace relays nothing: SIGTERM to the group ends the server, then strace writes its table
                srv.stop()
            c = parse_strace(tf.name)
        echoes = res['rps'] * duration
        r = sum(c.get(k, 0) for k in READS)
        w = sum(c.get(k, 0) for k in WRITES)
        wt = sum(c.get(k, 0) for k in WAITS)
        names = '/'.join(k for k in READS + WRITES if c.get(k, 0) > echoes / 100)
        out(f'| {name} ({names}) | {fmt(echoes)} | {r / echoes:.3f} | {w / echoes:.3f} | {wt / echoes:.3f} | '
            f'{c.get("futex", 0) / echoes:.3f} | {sum(c.values()) / echoes:.3f} |')
    out()
    out(f'Load average after: {loadavg()}')
    out()


# ---- idle connections ----------------------------------------------------------------------------

def probe_heap(srv, err):
    """SIGUSR1 to a server running the allocation probe: its managed heap after a full collection."""
    err.seek(0, os.SEEK_END)
    pos = err.tell()
    os.kill(srv.pid(), signal.SIGUSR1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        err.seek(pos)
        for line in err.read().splitlines():
            if line.startswith('alloc-probe-heap: '):
                return int(line.split()[1])
        time.sleep(0.05)
    raise RuntimeError('the server did not report its heap')


def idle(tls):
    n = 1000 if QUICK else 10000
    idle_py = os.path.join(ROOT, 'bench', 'echo', 'idle_conns.py')
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < n + 64:
        sys.exit(f'run.py: RLIMIT_NOFILE hard limit {hard} is below {n} connections; raise it first')
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the servers inherit it
    out(f'Load average before: {loadavg()}')
    out()
    out('    ' + shlex.join(['bench/tls/run.py', 'idle']) + f'   # bench/echo/idle_conns.py PORT {n} --tls')
    out()
    out(f'| server | RSS before | RSS with {n:,} idle TLS | RSS per connection | managed heap per connection |')
    out('|---|---:|---:|---:|---:|')
    for name in selected(['tulip', 'uvloop', 'asyncio', 'c-openssl', 'node', 'kestrel']):
        dotnet = name in ('tulip', 'kestrel')
        with tempfile.TemporaryFile('w+') as err:
            srv = Server(SERVERS[name], tls, env={'DOTNET_STARTUP_HOOKS': PROBE} if dotnet else None,
                         stderr=err if dotnet else subprocess.DEVNULL)
            client = None
            try:
                srv.wait_listening()
                # Warm the connection path once, so what is measured is per connection, not first use.
                warm = subprocess.Popen([PY, idle_py, str(srv.port), '100', '--tls'], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)
                warm.stdout.readline()
                warm.stdin.close()
                warm.wait()
                time.sleep(1)
                heap0 = probe_heap(srv, err) if dotnet else None
                rss0 = rss_kib(srv.pid())
                client = subprocess.Popen(['taskset', '-c', '1', PY, idle_py, str(srv.port), str(n), '--tls'], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, text=True)
                ready = client.stdout.readline().strip()
                if ready != f'ready {n}':
                    raise RuntimeError(f'idle_conns.py: {ready!r}')
                time.sleep(1)
                heap1 = probe_heap(srv, err) if dotnet else None
                rss1 = rss_kib(srv.pid())
            finally:
                if client is not None:
                    client.stdin.close()
                    client.wait()
                srv.stop()
        per = (rss1 - rss0) * 1024 / n
        heap = f'{fmt((heap1 - heap0) / n)} B' if dotnet else '-'
        out(f'| {name} | {fmt(rss0)} KiB | {fmt(rss1)} KiB | {fmt(per)} B ({per / 1024:.1f} KiB) | {heap} |')
    out()
    out(f'Load average after: {loadavg()}')
    out()


SECTIONS = {'build': build, 'throughput': throughput, 'alloc': alloc, 'syscalls': syscalls, 'idle': idle}


def main():
    skip_next = {'--rounds', '--only'}
    words, i = [], 1
    while i < len(sys.argv):
        a = sys.argv[i]
        if a in skip_next:
            i += 2
            continue
        if not a.startswith('--'):
            words.append(a)
        i += 1
    wanted = words or ['all']
    if 'all' in wanted:
        wanted = list(SECTIONS)
    unknown = [w for w in wanted if w not in SECTIONS]
    if unknown:
        sys.exit(f'run.py: unknown section {unknown[0]!r}; expected one of {", ".join(SECTIONS)} or all')
    if 'build' in wanted:
        out('## build')
        out()
        build()
        out()
        wanted.remove('build')
    if not wanted:
        return
    for exe in (LOADGEN, C_FLOOR, PROBE, os.path.join(DOTNET_PEERS, 'dotnet_tls_echo')):
        if not os.path.exists(exe):
            sys.exit(f'run.py: {exe} is missing: run bench/tls/run.py build first')
    ensure_tulip()
    with tempfile.TemporaryDirectory(prefix='tls-bench-') as folder:
        tls = make_cert(folder)
        for w in wanted:
            out(f'## {w}')
            out()
            SECTIONS[w](tls)


if __name__ == '__main__':
    main()
