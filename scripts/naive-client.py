#!/usr/bin/env python3
"""The naive baseline, not cmdunit's code: what the 2021 students did.

Usage: scripts/naive-client.py N [--url http://localhost:5000] [--window 100] [--timeout 120]

1. Ping every machine once through the forwarding unit, all at once
   (GET /work/<region>/<i> for asia/0, asia/1, emea/0, us/0, us/1).
2. Send N requests round robin over the machines that answered, keeping a fixed window of
   requests in flight: `window` threads, each with its own keep-alive connection (http.client),
   each taking the next request number as soon as its previous request is answered.

No retries, no calibration, no ceiling awareness. A request counts as ok on a 200. The only
second chance is the one any HTTP client gives: a request that finds its kept-alive connection
closed by the server (before any answer) is sent again once on a new connection.

Prints one JSON line on stdout:
  {"client": "naive", "n": .., "ok": .., "failed": .., "wall_ms": .., "window": .., "machines": [..]}
wall_ms runs from the client's own start (before the pings) to the last answer. Exit status 0
when every request was ok, 1 otherwise, 2 on bad arguments. Python standard library only.
"""

import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse

MACHINES = ["asia/0", "asia/1", "emea/0", "us/0", "us/1"]
STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class Client:
    """One keep-alive connection to the forwarding unit."""

    def __init__(self, host, port, timeout):
        self.args = (host, port, timeout)
        self.conn = None
        self.used = False

    def get(self, path):
        """GET path; returns the status (0 if no answer)."""
        for attempt in range(2):
            if self.conn is None:
                host, port, timeout = self.args
                self.conn = http.client.HTTPConnection(host, port, timeout=timeout)
                self.used = False
            reused = self.used
            try:
                self.conn.request("GET", path)
                resp = self.conn.getresponse()
                resp.read()
                self.used = True
                if resp.will_close:
                    self.close()
                return resp.status
            except STALE:
                self.close()
                if not reused or attempt == 1:
                    return 0
            except (OSError, http.client.HTTPException):
                self.close()
                return 0
        return 0

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def main():
    t0 = time.monotonic()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("n", type=int, help="number of requests")
    p.add_argument("--url", default="http://localhost:5000", help="forwarding unit URL")
    p.add_argument("--window", type=int, default=100, help="requests in flight")
    p.add_argument("--timeout", type=float, default=120.0, help="per-request timeout, seconds")
    a = p.parse_args()
    u = urllib.parse.urlsplit(a.url)
    if a.n < 1 or a.window < 1 or u.scheme != "http" or not u.hostname:
        p.error("N and --window must be >= 1 and --url an http://host:port URL")
    host, port = u.hostname, u.port or 80

    # 1. Ping every machine once, concurrently.
    answered = [False] * len(MACHINES)

    def ping(i):
        c = Client(host, port, a.timeout)
        answered[i] = c.get("/work/" + MACHINES[i]) == 200
        c.close()

    threads = [threading.Thread(target=ping, args=(i,)) for i in range(len(MACHINES))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    alive = [m for m, ok in zip(MACHINES, answered) if ok]

    # 2. N requests round robin over those, `window` in flight.
    lock = threading.Lock()
    state = {"next": 0, "ok": 0, "failed": 0, "last": time.monotonic()}

    def worker():
        c = Client(host, port, a.timeout)
        ok = failed = 0
        while True:
            with lock:
                k = state["next"]
                state["next"] += 1
            if k >= a.n:
                break
            if c.get("/work/" + alive[k % len(alive)]) == 200:
                ok += 1
            else:
                failed += 1
        c.close()
        with lock:
            state["ok"] += ok
            state["failed"] += failed
            state["last"] = max(state["last"], time.monotonic())

    if alive:
        threads = [threading.Thread(target=worker) for _ in range(min(a.window, a.n))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        state["failed"] = a.n
    wall_ms = (state["last"] - t0) * 1000.0
    print(
        json.dumps(
            {
                "client": "naive",
                "n": a.n,
                "ok": state["ok"],
                "failed": state["failed"],
                "wall_ms": round(wall_ms, 3),
                "window": a.window,
                "machines": alive,
            }
        ),
        flush=True,
    )
    return 0 if state["ok"] == a.n else 1


if __name__ == "__main__":
    sys.exit(main())
