#!/usr/bin/env python3
"""Opens N TCP connections to an echo server on 127.0.0.1:PORT and holds them idle.

Each connection echoes one byte once, so when "ready N" is printed every server has accepted
and set up every connection, whatever it does lazily. Then the connections stay open and silent
until this process's stdin closes (or it is killed). RLIMIT_NOFILE is raised to its hard limit
first: 10,000 connections need more fds than the usual soft limit of 1024.

usage: idle_conns.py PORT N
"""
import resource, socket, sys


def main():
    port, n = int(sys.argv[1]), int(sys.argv[2])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < n + 64:
        sys.exit(f'idle_conns: RLIMIT_NOFILE hard limit {hard} is below {n} connections + 64; raise it (ulimit -Hn) first')
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    conns = []
    for i in range(n):
        s = socket.create_connection(('127.0.0.1', port), timeout=30)
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
