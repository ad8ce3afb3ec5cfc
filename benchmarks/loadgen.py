"""A small asyncio HTTP/1.1 load generator (keep-alive, pre-built requests, little overhead).

Two modes: `closed` (N connections, each sends its next request when the last answers:
the highest throughput the server reaches) and `open` (requests scheduled at a fixed
rate whether or not earlier ones finished; latency counts from the scheduled time, so a
stalled server shows as latency, not as a lower request rate).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: Request i of a case; None: the case has no more (a closed loop then ends early).
MakeRequest = Callable[[int], bytes | None]
#: Between one connection opening and the next (closed loop).
RAMP_SECONDS = 0.02


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies: np.ndarray  # seconds

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def row(self) -> dict[str, float]:
        ms = self.latencies * 1000 if len(self.latencies) else np.array([np.nan])
        return {
            "requests/s": round(self.rate, 1),
            "p50 ms": round(float(np.percentile(ms, 50)), 2),
            "p99 ms": round(float(np.percentile(ms, 99)), 2),
            "errors": self.errors,
        }


def get(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: bench", *[f"{k}: {v}" for k, v in headers.items()]]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def post(path: str, body: object, headers: dict[str, str]) -> bytes:
    payload = json.dumps(body).encode()
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: bench",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        *[f"{k}: {v}" for k, v in headers.items()],
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await reader.readexactly(length)
    return status


async def _closed(
    host: str, port: int, make: MakeRequest, seconds: float, conns: int
) -> LoadResult:
    latencies: list[float] = []
    errors = 0
    counter = iter(range(10**9))
    # The connections open one by one, each sending as soon as it is open, as clients
    # arrive: a burst of connects is taken by whichever server process wakes first (it
    # accepts every pending one), and several workers would not share the load.
    measured_from = time.perf_counter() + conns * RAMP_SECONDS
    deadline = measured_from + seconds

    async def worker(i: int) -> None:
        nonlocal errors
        await asyncio.sleep(i * RAMP_SECONDS)
        reader, writer = await asyncio.open_connection(host, port)
        while time.perf_counter() < deadline:
            request = make(next(counter))
            if request is None:
                break
            started = time.perf_counter()
            status = await _exchange(reader, writer, request)
            if started >= measured_from:
                latencies.append(time.perf_counter() - started)
                errors += status >= 400
        writer.close()

    await asyncio.gather(*[worker(i) for i in range(conns)])
    # A case out of requests ends early: its rate is over the time it ran.
    ran = min(seconds, max(time.perf_counter() - measured_from, 1e-6))
    return LoadResult(len(latencies), errors, ran, np.array(latencies))


async def _open(
    host: str, port: int, make: MakeRequest, seconds: float, rate: float, conns: int
) -> LoadResult:
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(conns):
        pool.put_nowait(await asyncio.open_connection(host, port))
    latencies: list[float] = []
    errors = 0

    async def one(i: int, scheduled: float) -> None:
        nonlocal errors
        reader, writer = await pool.get()
        try:
            try:
                status = await _exchange(reader, writer, make(i))
            except (asyncio.IncompleteReadError, ConnectionResetError):
                # The server closed a connection left idle past its keep-alive: reopen.
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                status = await _exchange(reader, writer, make(i))
        finally:
            pool.put_nowait((reader, writer))
        latencies.append(time.perf_counter() - scheduled)
        errors += status >= 400

    start = time.perf_counter()
    tasks = []
    total = int(seconds * rate)
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    while not pool.empty():
        pool.get_nowait()[1].close()
    return LoadResult(total, errors, elapsed, np.array(latencies))


def closed_loop(
    host: str, port: int, make: MakeRequest, seconds: float = 10, conns: int = 8
) -> LoadResult:
    return asyncio.run(_closed(host, port, make, seconds, conns))


def open_loop(
    host: str, port: int, make: MakeRequest, rate: float, seconds: float = 10, conns: int = 64
) -> LoadResult:
    return asyncio.run(_open(host, port, make, seconds, rate, conns))
