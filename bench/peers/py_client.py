#!/usr/bin/python3
"""Benchmark peer: the asyncio + httpx + backoff stack, as a Python engineer would write it.

usage: py_client.py MODE SCENARIO URL N RATE CONCURRENCY
  MODE         burst (start all N at once) or paced (start one every 1/RATE s)
  SCENARIO     get, post, or hold (queue N posts, report, exit; a memory test)
  URL          http://127.0.0.1:PORT/... (loopback only)
  N            number of requests
  RATE         declared requests/second; 0 = not declared (paced acts as burst)
  CONCURRENCY  maximum connections in flight; 0 = httpx defaults

Prints one JSON line: {"ok": ..., "failed": ..., "attempts": ...}
(hold prints {"queued": N} instead). Run with Debian's /usr/bin/python3.
"""
import asyncio
import json
import os
import sys
import uuid
from urllib.parse import urlsplit

import backoff
import httpx

attempts = 0


# Retry on 429/5xx (any non-2xx) and on network errors, backoff's defaults:
# exponential waits with full jitter, for up to 5 minutes. Retry-After is not read.
@backoff.on_predicate(backoff.expo, lambda r: not r.is_success, max_time=300)
@backoff.on_exception(backoff.expo, httpx.TransportError, max_time=300)
async def send(client, scenario, url, body, key):
    global attempts
    attempts += 1
    if scenario == "get":
        return await client.get(url)
    return await client.post(url, json=body, headers={"Idempotency-Key": key})


async def one(client, scenario, url, i):
    body = {"to": "+1555%07d" % i, "message": "m%d" % i}
    key = uuid.uuid4().hex  # one per item, kept across its retries
    try:
        response = await send(client, scenario, url, body, key)
    except httpx.TransportError:
        return False
    return response.is_success


async def main(mode, scenario, url, n, rate, concurrency):
    paced = mode == "paced" and rate > 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency) \
        if concurrency else httpx.Limits()
    loop = asyncio.get_running_loop()
    # One shared client (and connection pool) for every request; the blog post
    # opened a new AsyncClient per call.
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        t0 = loop.time()

        if scenario == "hold":
            async def slot(i):
                if paced:
                    await asyncio.sleep(t0 + (i - 1) / rate - loop.time())
                return await one(client, "post", url, i)

            tasks = [asyncio.create_task(slot(i)) for i in range(1, n + 1)]
            await asyncio.sleep(0.5)  # every task has started
            print(json.dumps({"queued": len(tasks)}), flush=True)
            os._exit(0)

        if paced:
            tasks = []
            for i in range(1, n + 1):
                # Sleep to the i-th slot on the loop's monotonic clock, so it doesn't drift.
                await asyncio.sleep(max(0.0, t0 + (i - 1) / rate - loop.time()))
                tasks.append(asyncio.create_task(one(client, scenario, url, i)))
            results = await asyncio.gather(*tasks)
        else:
            results = await asyncio.gather(*(one(client, scenario, url, i) for i in range(1, n + 1)))

    ok = sum(results)
    print(json.dumps({"ok": ok, "failed": len(results) - ok, "attempts": attempts}), flush=True)


def parse_args(argv):
    def fail(message):
        print("py_client.py: %s\n%s" % (message, __doc__.split("\n\n")[1]), file=sys.stderr)
        sys.exit(2)

    def number(name, text, kind):
        try:
            value = kind(text)
        except ValueError:
            value = -1
        if not 0 <= value < float("inf"):
            fail("bad %s %r (a number >= 0)" % (name, text))
        return value

    if len(argv) != 6:
        fail("expected 6 arguments, got %d" % len(argv))
    mode, scenario, url, n, rate, concurrency = argv
    if mode not in ("burst", "paced"):
        fail("bad MODE %r (burst or paced)" % mode)
    if scenario not in ("get", "post", "hold"):
        fail("bad SCENARIO %r (get, post or hold)" % scenario)
    try:
        parts = urlsplit(url)
        parts.port  # raises ValueError if malformed
        loopback = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
    except ValueError:
        loopback = False
    if not loopback:
        fail("bad URL %r (http://127.0.0.1:PORT/...)" % url)
    return (mode, scenario, url, number("N", n, int), number("RATE", rate, float),
            number("CONCURRENCY", concurrency, int))


if __name__ == "__main__":
    args = parse_args(sys.argv[1:])
    asyncio.run(main(*args))
