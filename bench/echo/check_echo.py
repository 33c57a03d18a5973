#!/usr/bin/env python3
"""Checks that an echo server echoes correctly (the load generator counts bytes, it does not compare them).

usage: bench/echo/check_echo.py 'SERVER COMMAND {port}' [PORT]

Starts the server, then: 20 concurrent connections echo random messages of 1 B to 5 MiB and compare
every byte; a half-closed connection gets all of its 3 MiB back, then EOF; 300 connections reset
with unread data in flight; 2,000 connections opened, echoed once and closed. At the end the server
must still echo and hold no more fds than at the start (it leaked none). Exits 1 with what failed.
"""
import os, shlex, socket, struct, subprocess, sys, threading, time


def fds(pid):
    return len(os.listdir(f'/proc/{pid}/fd'))


def recv_exact(s, n):
    got = bytearray()
    while len(got) < n:
        b = s.recv(min(1 << 20, n - len(got)))
        if not b:
            raise AssertionError(f'connection closed after {len(got)} of {n} bytes')
        got += b
    return bytes(got)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 27900 + os.getpid() % 90
    proc = subprocess.Popen(shlex.split(sys.argv[1].format(port=port)), start_new_session=True)
    failures = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(('127.0.0.1', port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f'check_echo: the server did not start (exit {proc.poll()})')
                time.sleep(0.05)
        time.sleep(0.2)
        fd0 = fds(proc.pid)

        def echo(size, reps):
            try:
                with socket.create_connection(('127.0.0.1', port)) as s:
                    for _ in range(reps):
                        data = os.urandom(size)
                        threading.Thread(target=s.sendall, args=(data,)).start()
                        if recv_exact(s, size) != data:
                            raise AssertionError(f'{size}-byte echo differs')
            except Exception as e:  # noqa: BLE001 - reported below
                failures.append(f'echo of {size} B: {e}')

        ts = [threading.Thread(target=echo, args=(size, 10)) for size in [1, 1024, 65536, 1 << 20, 5 << 20] * 4]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

        def rest():
            with socket.create_connection(('127.0.0.1', port)) as s:
                data = os.urandom(3 << 20)
                threading.Thread(target=lambda: (s.sendall(data), s.shutdown(socket.SHUT_WR))).start()
                got = bytearray()
                while b := s.recv(1 << 20):
                    got += b
                if bytes(got) != data:
                    failures.append(f'half-close: {len(got)} of {len(data)} bytes came back, or they differ')

            for _ in range(300):
                c = socket.create_connection(('127.0.0.1', port))
                c.setblocking(False)
                try:
                    c.send(os.urandom(2 << 20))
                except BlockingIOError:
                    pass
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
                c.close()

            for _ in range(2000):
                with socket.create_connection(('127.0.0.1', port)) as c:
                    c.sendall(b'hi')
                    if recv_exact(c, 2) != b'hi':
                        failures.append('open/echo/close: wrong bytes')
                        break

            with socket.create_connection(('127.0.0.1', port), timeout=10) as c:
                c.sendall(b'alive')
                if recv_exact(c, 5) != b'alive':
                    failures.append('the server no longer echoes')

        try:
            rest()
        except OSError as e:
            failures.append(f'{e!r} (did the server die? exit {proc.poll()})')
        deadline = time.monotonic() + 10
        while proc.poll() is None and fds(proc.pid) > fd0 and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is not None:
            failures.append(f'the server exited with {proc.returncode}')
        elif fds(proc.pid) > fd0:
            failures.append(f'fds: {fds(proc.pid)} at the end, {fd0} at the start')
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
        proc.wait()
    if failures:
        print('check_echo: FAILED\n  ' + '\n  '.join(failures))
        sys.exit(1)
    print('check_echo: ok (every byte echoed, half-close, resets, 2,000 connections, no fd left)')


if __name__ == '__main__':
    main()
