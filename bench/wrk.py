"""A wrk-like load: `connections` keep-alive connections (one thread each, http.client, no
retries, no pauses) sending the same POST back to back for `seconds`. What wrk reports —
rate, latency percentiles, slow and non-2xx answers — plus what wrk does not: each answer's
completion time, so a stall (many requests answered together after a long wait) shows up
as a burst after a gap.

    python -m bench.wrk http://127.0.0.1:8080 --seconds 15 --connections 16
"""
from __future__ import annotations

import argparse
import http.client
import json
import threading
import time
from urllib.parse import urlsplit

from motcua_common import demo

from .harness import percentile


def _one_connection(host: str, port: int, paths: list[str], body: bytes, stop_at: float, out: list, errors: list):
    connection = http.client.HTTPConnection(host, port, timeout=60)
    headers = {"Content-Type": "application/json"}
    index = 0
    while time.monotonic() < stop_at:
        path = paths[index % len(paths)]
        index += 1
        started = time.monotonic()
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            errors.append(repr(exc))
            connection.close()
            connection = http.client.HTTPConnection(host, port, timeout=60)
            continue
        out.append((started, time.monotonic(), status, path))
    connection.close()


def run(base_url: str, paths: list[str], seconds: float = 15, connections: int = 16, body: dict | None = None) -> dict:
    parts = urlsplit(base_url)
    payload = json.dumps(body or {"service_code": "A", "priority": "normal"}).encode()
    records: list[list] = [[] for _ in range(connections)]
    errors: list[str] = []
    begun = time.monotonic()
    stop_at = begun + seconds
    threads = [threading.Thread(target=_one_connection, daemon=True,
                                args=(parts.hostname, parts.port or 80, paths[i::connections] or paths, payload,
                                      stop_at, records[i], errors))
               for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - begun
    answers = sorted((r for mine in records for r in mine), key=lambda r: r[1])
    latencies = [done - started for started, done, *_ in answers]
    # The longest time in which nothing was answered while requests were in flight: a stall.
    gaps = [(answers[i][1] - answers[i - 1][1], answers[i - 1][1] - begun) for i in range(1, len(answers))]
    longest_gap, gap_at = max(gaps, default=(0.0, 0.0))
    return {
        "connections": connections, "seconds": round(elapsed, 1), "requests": len(answers),
        "per_s": round(len(answers) / elapsed, 1),
        "non_2xx": sum(1 for _s, _d, status, _p in answers if not 200 <= status < 300),
        "socket_errors": len(errors),
        "over_2s": sum(1 for latency in latencies if latency > 2),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1), "p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "max_ms": round(max(latencies, default=0) * 1000, 1),
        "longest_silence_ms": round(longest_gap * 1000, 1), "silence_at_s": round(gap_at, 1),
        # the slowest answers: when they were asked (seconds into the run), how long they took, where
        "slowest": [{"at_s": round(started - begun, 2), "ms": round((done - started) * 1000), "status": status, "path": path}
                    for started, done, status, path in sorted(answers, key=lambda r: r[0] - r[1])[:8]],
    }


def ticket_paths(base_path: str = "/queue/api/v1") -> list[str]:
    return [f"{base_path}/wards/{ward}/tickets" for ward in demo.ward_ids()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.wrk")
    parser.add_argument("base_url")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.base_url, ticket_paths(), args.seconds, args.connections)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
