#!/usr/bin/env python3
"""Latency and throughput of a pi0.cpp policy server, seen from openpi clients on 127.0.0.1.

Starts the server on a free port, runs CLIENTS concurrent clients that each send REQUESTS
LIBERO-style observations (two 224x224x3 uint8 images, 8-d state, a prompt) one after another,
and prints the round-trip latency percentiles (send -> reply decoded) and the throughput.

  scripts/bench_serve.py --server build/pi0_fake_policy_server
  scripts/bench_serve.py --server build/pi0 --server-args "serve --checkpoint CK --robot libero" --no-noise
"""
import argparse
import asyncio
import os
import shlex
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "serve"))
import test_serve_protocol as proto  # noqa: E402  (the openpi client re-implementation)


async def client(url, seeds, noise, lat, replies=None):
    c = await proto.Client().connect(url)
    for s in seeds:
        obs = proto.make_obs(s, noise=noise)
        t0 = time.perf_counter()
        r = await c.infer(obs)
        lat.append((time.perf_counter() - t0) * 1000)
        if replies is not None:
            replies[s] = r["actions"]
    await c.close()


async def bench(url, clients, requests, noise, warmup, replies):
    await client(url, range(warmup), noise, [])
    lat = []
    t0 = time.perf_counter()
    await asyncio.gather(*[client(url, range(1000 * c, 1000 * c + requests), noise, lat, replies) for c in range(clients)])
    return lat, time.perf_counter() - t0


async def verify(url, replies):
    """Replays every request on one client: with `noise`, each concurrent reply must be identical."""
    alone = {}
    await client(url, sorted(replies), True, [], alone)
    bad = [s for s in replies if not np.array_equal(replies[s], alone[s])]
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", required=True)
    ap.add_argument("--server-args", default="")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--no-noise", action="store_true", help="do not send a 'noise' array")
    ap.add_argument("--verify", action="store_true",
                    help="then replay every request alone and require identical actions (needs noise)")
    a = ap.parse_args()
    proto.SERVER, proto.SERVER_ARGS = a.server, shlex.split(a.server_args)
    replies = {}
    with proto.ServerProcess("--quiet") if "serve" in a.server_args else proto.ServerProcess() as srv:
        lat, wall = asyncio.run(bench(srv.url, a.clients, a.requests, not a.no_noise, a.warmup, replies))
        if a.verify:
            bad = asyncio.run(verify(srv.url, replies))
            if len(replies) != a.clients * a.requests or bad:
                print(f"verify: {len(replies)} replies, {len(bad)} differ from a single-client run", file=sys.stderr)
                sys.exit(1)
            print(f"verify: all {len(replies)} concurrent replies equal the single-client run")
    lat = np.array(lat)
    print(f"{a.clients} clients x {a.requests} requests = {len(lat)} replies in {wall:.2f} s: "
          f"{len(lat) / wall:.1f} requests/s; latency p50 {np.percentile(lat, 50):.2f} ms, "
          f"p99 {np.percentile(lat, 99):.2f} ms, max {lat.max():.2f} ms")


if __name__ == "__main__":
    main()
