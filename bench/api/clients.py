"""The SSE clients of ``bench.api.run``: N connections to ``/api/v1/events`` in one asyncio process.

Each client sends ``Last-Event-ID`` (so every client starts at the same event), reads the stream with a minimal
HTTP/1.1 reader, and records for each ``task`` event whose message is ``bench <seq>`` the time it arrived
(``time.time()``). Prints ``ready`` once every connection has its response headers, then writes a JSON report
to ``--out`` once each client has ``--expect`` events (or ``--timeout`` passed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

#: The sequence number in a benchmark event's message (``"message":"... bench 42"``).
_SEQ = re.compile(rb'"message":"[^"]*bench (\d+)"')


async def client(url: str, last_id: str, expect: int, arrivals: list[tuple[int, float]], ready: asyncio.Event) -> None:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(
        f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept: text/event-stream\r\n"
        f"Last-Event-ID: {last_id}\r\nConnection: keep-alive\r\n\r\n".encode()
    )
    await writer.drain()
    while (await reader.readline()) not in (b"\r\n", b""):
        pass  # headers (chunked transfer: chunk size lines are skipped below as non-field lines)
    ready.set()
    try:
        while len(arrivals) < expect:
            line = await reader.readline()
            if not line:
                return
            if line.startswith(b"data: ") and (found := _SEQ.search(line)):
                arrivals.append((int(found.group(1)), time.time()))
    finally:
        writer.close()


async def main(args: argparse.Namespace) -> None:
    arrivals: list[list[tuple[int, float]]] = [[] for _ in range(args.clients)]
    readies = [asyncio.Event() for _ in range(args.clients)]
    tasks = [
        asyncio.create_task(client(args.url, args.last_id, args.expect, arrivals[i], readies[i]))
        for i in range(args.clients)
    ]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 60)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*tasks), args.timeout)
    Path(args.out).write_text(json.dumps(arrivals))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--last-id", required=True)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--out", required=True)
    asyncio.run(main(parser.parse_args()))
