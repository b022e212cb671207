"""Simulated BMC fleet benchmark: how many BMCs one ``flasher-sandbox bmc`` process serves, and how fast.

    .venv/bin/python -m bench.bmcsim.run --counts 100,300,1000 --schemes https,http

For each count and scheme (HTTPS: a certificate per BMC from the sandbox CA, which the clients trust; or plain
HTTP), starts ``flasher-sandbox bmc --count N`` on free loopback ports (as the test fixtures do) and measures:
the time until every BMC answers, the process's resident memory, one authenticated GET per BMC in
sequence (a new connection each, as a poller that visits every BMC), ``--threads`` concurrent keep-alive
clients (asyncio, one process) GETting random BMCs' FirmwareInventory for ``--seconds`` (throughput and
latency percentiles), and a sushy login + ``get_system`` on the first ``--sushy`` BMCs. Prints a Markdown
table. The client shares the machine's cores with the simulator, so the throughput is a lower bound.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import ssl
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
import requests
import sushy

from bench.support import memory_mib
from flasher_sandbox.bmc.config import Scheme
from flasher_sandbox.servers import BmcFleet


async def _hammer_async(fleet: BmcFleet, clients: int, seconds: float) -> list[float]:
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    auth = aiohttp.BasicAuth("root", "calvin")

    async def client(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < deadline:
            url = fleet.redfish(random.randrange(fleet.count), "/UpdateService/FirmwareInventory")
            started = time.perf_counter()
            async with session.get(url, auth=auth) as response:
                response.raise_for_status()
                await response.read()
            latencies.append(time.perf_counter() - started)

    context = ssl.create_default_context(cafile=str(fleet.ca_bundle)) if fleet.ca_bundle is not None else None
    connector = aiohttp.TCPConnector(limit=clients, limit_per_host=4, ssl=context if context is not None else True)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(client(session) for _ in range(clients)))
    return latencies


def _hammer(fleet: BmcFleet, clients: int, seconds: float) -> tuple[int, list[float]]:
    """``clients`` concurrent keep-alive clients (one aiohttp client process) GETting random BMCs."""
    latencies = asyncio.run(_hammer_async(fleet, clients, seconds))
    return len(latencies), latencies


def measure(count: int, scheme: Scheme, threads: int, seconds: float, sushy_count: int) -> dict[str, float | str]:
    """One row of the table for a fleet of ``count`` BMCs serving ``scheme``."""
    with tempfile.TemporaryDirectory() as workdir:
        started = time.monotonic()
        fleet = BmcFleet(Path(workdir), count=count, scheme=scheme).start(timeout=300)
        try:
            ready = time.monotonic() - started  # process start to every BMC answering once
            assert fleet.process is not None
            rss = memory_mib(fleet.process.pid).get("rss", float("nan"))
            started = time.perf_counter()
            for i in range(count):
                url = fleet.redfish(i, "/Managers")
                answer = requests.get(url, auth=("root", "calvin"), verify=fleet.verify, timeout=10)
                answer.raise_for_status()
            sequential_ms = 1000 * (time.perf_counter() - started) / count
            done, latencies = _hammer(fleet, threads, seconds)
            latencies.sort()
            started = time.perf_counter()
            for i in range(min(sushy_count, count)):
                sushy.Sushy(
                    fleet.redfish(i), username="root", password="calvin", verify=fleet.verify, server_side_retries=1
                ).get_system()
            sushy_ms = 1000 * (time.perf_counter() - started) / min(sushy_count, count)
            # A Sushy object logs out when collected; it sits in a reference cycle, so collect it now, while its
            # BMC still answers (collected later against a dead port, each logout retries for ~27 s by default).
            gc.collect()
            return {
                "count": count,
                "scheme": scheme,
                "ready_s": ready,
                "rss_mib": rss,
                "sequential_ms": sequential_ms,
                "rps": done / seconds,
                "p50_ms": 1000 * statistics.median(latencies),
                "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
                "sushy_ms": sushy_ms,
            }
        finally:
            fleet.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", default="100,300,1000", help="comma-separated fleet sizes")
    parser.add_argument("--schemes", default="https,http", help="comma-separated: https, http")
    parser.add_argument("--threads", type=int, default=32, help="concurrent clients in the throughput phase")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the throughput phase")
    parser.add_argument("--sushy", type=int, default=50, help="BMCs to open a sushy session with")
    args = parser.parse_args()
    schemes: list[Scheme] = []
    for name in args.schemes.split(","):
        if name not in ("https", "http"):
            parser.error(f"--schemes: {name!r} is neither https nor http")
        schemes.append("https" if name == "https" else "http")
    rows = [
        measure(int(c), scheme, args.threads, args.seconds, args.sushy)
        for c in args.counts.split(",")
        for scheme in schemes
    ]
    print(
        "| BMCs | scheme | ready (s) | RSS (MiB) | 1 GET per BMC, sequential (ms/BMC) | "
        f"{args.threads} async clients (req/s) | p50 (ms) | p99 (ms) | sushy login + get_system (ms) |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['count']:.0f} | {r['scheme']} | {r['ready_s']:.1f} | {r['rss_mib']:.0f} | "
            f"{r['sequential_ms']:.2f} | "
            f"{r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['sushy_ms']:.1f} |"
        )


if __name__ == "__main__":
    main()
