#!/usr/bin/env python3
"""Hostile HTTP clients for spec/serve/limits_spec.lua and framing_spec.lua, on 127.0.0.1.

Every mode is bounded in count and in time, and prints one JSON line:
  raw PORT FILE TIMEOUT            send FILE's bytes, read until the server closes
  drip PORT FILE INTERVAL MAXTIME  send FILE's bytes up to the first blank line, then the
                                   rest one byte every INTERVAL s, reading what comes back
  flood PORT PID N HOLD            open N idle connections, hold them HOLD s while
                                   measuring the CPU of process PID, close them, then GET /
  pipeline PORT PID PATH SECONDS MAXREQ
                                   pipeline "GET PATH" without ever reading the answers,
                                   sampling the resident memory of process PID
"""
import errno
import json
import os
import select
import socket
import sys
import time


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def read_until_close(s, deadline):
    got = b""
    s.setblocking(False)
    while time.monotonic() < deadline:
        r, _, _ = select.select([s], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            break
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, BlockingIOError):
            return got, True
        if not chunk:
            return got, True
        got += chunk
    return got, False


def connect(port, timeout=5):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def mode_raw(port, path, timeout):
    data = open(path, "rb").read()
    t0 = time.monotonic()
    s = connect(port)
    s.sendall(data)
    got, closed = read_until_close(s, t0 + timeout)
    s.close()
    return {"elapsed": time.monotonic() - t0, "closed": closed, "response": got.decode("latin-1")}


def mode_drip(port, path, interval, maxtime):
    data = open(path, "rb").read()
    head, sep, body = data.partition(b"\r\n\r\n")
    t0 = time.monotonic()
    s = connect(port)
    s.sendall(head + sep)
    s.setblocking(False)
    got, closed, sent = b"", False, 0
    while time.monotonic() - t0 < maxtime and not closed:
        if sent < len(body):
            try:
                s.send(body[sent:sent + 1])
                sent += 1
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
        more, closed = read_until_close(s, time.monotonic() + interval)
        got += more
    s.close()
    return {"elapsed": time.monotonic() - t0, "closed": closed, "body_bytes_sent": sent,
            "response": got.decode("latin-1")}


def mode_flood(port, pid, n, hold):
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        rc = s.connect_ex(("127.0.0.1", port))
        if rc not in (0, errno.EINPROGRESS):
            s.close()
            break
        socks.append(s)
    time.sleep(0.5)  # let the server take what it takes
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(hold)
    cpu = (cpu_seconds(pid) - c0) / (time.monotonic() - t0)
    for s in socks:
        s.close()
    start = time.monotonic()
    status = None
    while status is None and time.monotonic() - start < 8:
        try:
            s = connect(port, timeout=2)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            got, _ = read_until_close(s, time.monotonic() + 2)
            s.close()
            if got.startswith(b"HTTP/1.1 "):
                status = int(got[9:12])
        except OSError:
            time.sleep(0.1)
    return {"opened": len(socks), "cpu": cpu, "status": status, "served_in": time.monotonic() - start}


def mode_pipeline(port, pid, path, seconds, maxreq):
    req = ("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode()
    s = connect(port)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a client that reads nothing
    s.setblocking(False)
    rss0 = rss_kb(pid)
    rss_max, sent, pending = rss0, 0, b""
    t0 = time.monotonic()
    last_sample = 0.0
    while time.monotonic() - t0 < seconds and (sent < maxreq or pending):
        if not pending and sent < maxreq:
            batch = min(256, maxreq - sent)
            pending, sent = req * batch, sent + batch
        try:
            k = s.send(pending)
            pending = pending[k:]
        except BlockingIOError:
            select.select([], [s], [], 0.05)
        except (BrokenPipeError, ConnectionResetError):
            break
        now = time.monotonic()
        if now - last_sample > 0.1:
            rss_max, last_sample = max(rss_max, rss_kb(pid)), now
    settle = time.monotonic() + 1.0
    while time.monotonic() < settle:
        rss_max = max(rss_max, rss_kb(pid))
        time.sleep(0.1)
    s.close()
    return {"queued_requests": sent - len(pending) // len(req), "rss_before_kb": rss0, "rss_max_kb": rss_max,
            "elapsed": time.monotonic() - t0}


def main(argv):
    mode, port = argv[1], int(argv[2])
    if mode == "raw":
        out = mode_raw(port, argv[3], float(argv[4]))
    elif mode == "drip":
        out = mode_drip(port, argv[3], float(argv[4]), float(argv[5]))
    elif mode == "flood":
        out = mode_flood(port, int(argv[3]), int(argv[4]), float(argv[5]))
    elif mode == "pipeline":
        out = mode_pipeline(port, int(argv[3]), argv[4], float(argv[5]), int(argv[6]))
    else:
        raise SystemExit("unknown mode " + mode)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv)
