#!/usr/bin/env python3
"""Opens N TCP connections to an echo server on 127.0.0.1:PORT and holds them idle.

Each connection echoes one byte once, so when "ready N" is printed every server has accepted
and set up every connection, whatever it does lazily. Then the connections stay open and silent
until this process's stdin closes (or it is killed). RLIMIT_NOFILE is raised to its hard limit
first: 10,000 connections need more fds than the usual soft limit of 1024.

With --tls every connection is TLS 1.3 (the handshake and the one-byte echo done before "ready"),
for a TLS echo server (bench/tls/run.py idle); the server's certificate is not verified, as in the
TLS load generator.

usage: idle_conns.py PORT N [--tls]
"""
import resource, socket, ssl, sys


def main():
    tls = '--tls' in sys.argv[1:]
    args = [a for a in sys.argv[1:] if a != '--tls']
    port, n = int(args[0]), int(args[1])
    ctx = None
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < n + 64:
        sys.exit(f'idle_conns: RLIMIT_NOFILE hard limit {hard} is below {n} connections + 64; raise it (ulimit -Hn) first')
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    conns = []
    for i in range(n):
        s = socket.create_connection(('127.0.0.1', port), timeout=30)
        if ctx is not None:
            s = ctx.wrap_socket(s, server_hostname='localhost')
        s.sendall(b'x')
        if s.recv(1) != b'x':
            sys.exit(f'idle_conns: connection {i} got no echo')
        conns.append(s)
    print(f'ready {len(conns)}', flush=True)
    sys.stdin.read()  # hold until the caller closes our stdin
    for s in conns:
        s.close()


if __name__ == '__main__':
    main()
