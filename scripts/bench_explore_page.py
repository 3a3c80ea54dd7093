"""Size and paint time of an ``explore`` page (issue 15's budget: 100 Transformer sentences with every layer
and head under 5 MB, painted in under 2 s in headless Chromium).

Builds the page with ``seq2seq_attn.explore.explore`` for the first N sentences of ``--src``, then opens it
``--repeats`` times in headless Chromium, alternating with a blank page (so machine noise hits both alike), and
reports the medians of: the time the page's script took to build the document (``data-built-ms``: milliseconds
from navigation start, HTML and JSON parsing included), the wall time of ``chromium --screenshot`` (start,
load, script, layout, paint, PNG) for the page and for the blank page, and their difference.

    python scripts/bench_explore_page.py RUN_DIR --src shared:multi30k/test_2016_flickr.de.gz -n 100
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from seq2seq_attn.explore import explore
from seq2seq_attn.paths import resolve_path
from seq2seq_attn.translation.corpus import read_parallel


def chromium(args: list[str]) -> tuple[float, str]:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise SystemExit("chromium not found (Debian: apt-get install chromium)")
    start = time.perf_counter()
    proc = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", *args], capture_output=True,
                          text=True, timeout=300)
    return time.perf_counter() - start, proc.stdout


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir")
    p.add_argument("--src", required=True, help="source sentences, one a line (plain or .gz, shared: allowed)")
    p.add_argument("-n", type=int, default=100, help="sentences on the page")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default=None, help="keep the page here (default: a temporary file)")
    args = p.parse_args()
    src = resolve_path(args.src)
    sources, _ = read_parallel(src, src)
    tmp = Path(tempfile.mkdtemp())
    page = Path(args.out) if args.out else tmp / "page.html"
    blank = tmp / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>\n", encoding="utf-8")
    start = time.perf_counter()
    explore(args.run_dir, [_lines(tmp, sources[: args.n])], page, device="cpu")
    build_s = time.perf_counter() - start
    built, page_s, blank_s = [], [], []
    for _ in range(args.repeats):
        _, dom = chromium(["--dump-dom", page.resolve().as_uri()])
        built.append(float(re.search(r'data-built-ms="([0-9.]+)"', dom).group(1)))
        page_s.append(chromium(["--screenshot=" + str(tmp / "p.png"), "--window-size=1200,900",
                                page.resolve().as_uri()])[0])
        blank_s.append(chromium(["--screenshot=" + str(tmp / "b.png"), "--window-size=1200,900",
                                 blank.resolve().as_uri()])[0])
    med = statistics.median
    size = page.stat().st_size
    print(f"explore page, {args.n} sentences of {args.src}, run {args.run_dir}: {size / 1e6:.2f} MB "
          f"(built in {build_s:.1f} s on the CPU)")
    print(f"script built the document {med(built):.0f} ms after navigation start (median of {args.repeats}; "
          f"min {min(built):.0f}, max {max(built):.0f})")
    print(f"chromium --screenshot wall time: page {med(page_s):.2f} s, blank page {med(blank_s):.2f} s, "
          f"difference {med(page_s) - med(blank_s):.2f} s")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}; "
          f"date {datetime.date.today().isoformat()}")


def _lines(tmp: Path, sentences: list[str]) -> Path:
    path = tmp / "sources.txt"
    path.write_text("".join(s.strip() + "\n" for s in sentences if s.strip()), encoding="utf-8")
    return path


if __name__ == "__main__":
    main()
