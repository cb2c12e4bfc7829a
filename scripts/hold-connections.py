#!/usr/bin/env python3
"""Hold N connections open to an HTTP server (for scripts/bench-emulator.sh).

usage: hold-connections.py HOST:PORT N MODE SECONDS
  MODE answered: send GET /work on each connection and read its answer, keeping the connection
                 open (N idle keep-alive connections, one server thread each).
  MODE inflight: send GET /work on each connection and do not wait for answers (N requests in
                 flight at once).
Prints "ready opened=<n> answered=<n> failed=<n>" once all are set up, then holds them SECONDS.
"""
import resource
import socket
import sys
import time

def main():
    hostport, n, mode, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    host, port = hostport.rsplit(":", 1)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    socks, failed, answered = [], 0, 0
    for _ in range(n):
        try:
            s = socket.create_connection((host, int(port)), timeout=30)
            s.sendall(b"GET /work HTTP/1.1\r\nHost: bench\r\n\r\n")
            socks.append(s)
        except OSError:
            failed += 1
    if mode == "answered":
        for s in socks:
            try:
                data = b""
                while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
                    chunk = s.recv(4096)
                    if not chunk:
                        raise OSError("closed")
                    data += chunk
                answered += 1
            except OSError:
                failed += 1
    print(f"ready opened={len(socks)} answered={answered} failed={failed}", flush=True)
    time.sleep(seconds)

main()
