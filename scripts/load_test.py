"""Load test of ``seq2seq-attn serve``: N requests from C concurrent clients to a server on 127.0.0.1, with
batching on and off, side by side. Starts and stops the servers itself and stops after N requests (or
``--time-limit`` seconds per mode, whichever comes first).

    python scripts/load_test.py RUN_DIR --requests 2000 --clients 16 \
        --sentences shared:multi30k/test_2016_flickr.de.gz --beam 5 --out load.json

Prints, per mode: requests, status counts (2xx / 4xx / 5xx / connection errors), latency p50 / p99 (ms),
throughput (requests/s), model calls and the mean requests per call; then the throughput ratio. Each request
translates (or classifies) one sentence (or document) of ``--sentences`` (one a line; default: a few built-in
ones), cycling through the file.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

DEFAULT_SENTENCES = ["Ein Mann fährt Fahrrad .", "Zwei Hunde spielen im Schnee .", "Eine Frau liest ein Buch .",
                     "Kinder spielen auf der Straße .", "Ein Mann mit Hut steht vor einem Gebäude ."]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_lines(spec: str | None) -> list[str]:
    if spec is None:
        return DEFAULT_SENTENCES
    from seq2seq_attn.paths import resolve_path

    path = Path(resolve_path(spec))
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip()]
    if not lines:
        raise SystemExit(f"{spec}: no lines")
    return lines


def start_server(args: argparse.Namespace, batching: bool, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "seq2seq_attn", "serve", str(args.run_dir), "--host", "127.0.0.1",
           "--port", str(port), "--engine", args.engine, "--device", "cpu", "--max-wait-ms", str(args.max_wait_ms),
           "--max-batch", str(args.max_batch)]
    if not batching:
        cmd.append("--no-batching")
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_ready(proc: subprocess.Popen, url: str, timeout: float = 180.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            return httpx.get(f"{url}/health", timeout=2.0).json()
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"server at {url} not ready after {timeout:.0f}s")


async def drive(url: str, bodies: list[tuple[str, dict]], clients: int, time_limit: float) -> dict:
    """Send every body once from ``clients`` concurrent clients; statuses and latencies (s)."""
    statuses: list[int] = []
    latencies: list[float] = []
    next_index = 0
    stop_at = time.monotonic() + time_limit

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal next_index
        while next_index < len(bodies) and time.monotonic() < stop_at:
            path, body = bodies[next_index]
            next_index += 1
            t0 = time.perf_counter()
            try:
                r = await http.post(f"{url}{path}", json=body)
                statuses.append(r.status_code)
            except httpx.HTTPError:
                statuses.append(0)
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=120.0, limits=limits) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return {"statuses": statuses, "latencies": latencies, "seconds": time.perf_counter() - t0}


def summarize(mode: str, run: dict, health: dict) -> dict:
    lat = sorted(run["latencies"])
    n = len(lat)
    st = run["statuses"]
    batching = health.get("batching", {})
    return {
        "mode": mode, "requests": n, "ok_2xx": sum(200 <= s < 300 for s in st),
        "client_4xx": sum(400 <= s < 500 for s in st),
        "server_5xx": sum(s >= 500 for s in st), "connection_errors": sum(s == 0 for s in st),
        "p50_ms": 1000 * statistics.median(lat) if n else float("nan"),
        "p99_ms": 1000 * lat[min(n - 1, int(0.99 * n))] if n else float("nan"),
        "requests_per_s": n / run["seconds"] if run["seconds"] else 0.0, "seconds": run["seconds"],
        "model_calls": batching.get("calls"), "requests_per_call": (batching.get("requests", 0) / batching["calls"])
        if batching.get("calls") else None,
    }


def run_mode(args: argparse.Namespace, batching: bool, bodies: list[tuple[str, dict]]) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(args, batching, port)
    try:
        wait_ready(proc, url)
        result = asyncio.run(drive(url, bodies, args.clients, args.time_limit))
        health = httpx.get(f"{url}/health", timeout=10.0).json()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return summarize("batching on" if batching else "batching off", result, health)


def table(rows: list[dict]) -> str:
    head = "| mode | requests | 2xx | 4xx | 5xx | conn. errors | p50 ms | p99 ms | requests/s | requests/call |"
    lines = [head, "|" + " --- |" * 10]
    for r in rows:
        per_call = f"{r['requests_per_call']:.1f}" if r["requests_per_call"] else "-"
        lines.append(f"| {r['mode']} | {r['requests']} | {r['ok_2xx']} | {r['client_4xx']} | {r['server_5xx']} | "
                     f"{r['connection_errors']} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['requests_per_s']:.1f} | "
                     f"{per_call} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path, help="a translation or classify run (or a CTranslate2 export)")
    p.add_argument("--engine", default="torch", choices=("torch", "ctranslate2"))
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--sentences", default=None, help="one sentence/document a line (.gz or shared: allowed)")
    p.add_argument("--task", choices=("translate", "classify"), default="translate")
    p.add_argument("--beam", type=int, default=None, help="beam size of each translate request")
    p.add_argument("--max-batch", type=int, default=64)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--modes", default="on,off", help="batching modes to run: on, off or on,off")
    p.add_argument("--time-limit", type=float, default=900.0, help="seconds per mode before it stops sending")
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = p.parse_args(argv)
    lines = read_lines(args.sentences)
    if args.task == "translate":
        extra = {} if args.beam is None else {"beam": args.beam}
        bodies = [("/translate", {"sentences": [lines[i % len(lines)]], **extra}) for i in range(args.requests)]
    else:
        bodies = [("/classify", {"texts": [lines[i % len(lines)]]}) for i in range(args.requests)]
    rows = [run_mode(args, mode == "on", bodies) for mode in args.modes.split(",")]
    print(table(rows))
    by_mode = {r["mode"]: r for r in rows}
    if len(by_mode) == 2 and by_mode["batching off"]["requests_per_s"]:
        ratio = by_mode["batching on"]["requests_per_s"] / by_mode["batching off"]["requests_per_s"]
        print(f"throughput, batching on / off: {ratio:.2f}x")
    if args.out is not None:
        args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": rows},
                                       indent=1), encoding="utf-8")
    return 1 if any(r["server_5xx"] or r["connection_errors"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
