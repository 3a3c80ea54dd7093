"""``seq2seq-attn study``: ``study CONFIG`` (train and measure every cell, then write the report),
``study growth CONFIG`` (cost growth with the number of positions) and ``study report CONFIG`` (the report
from whatever results exist)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ACTIONS = ("growth", "report")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "study", help="compare attention mechanisms across text and image tasks: study [growth|report] CONFIG",
        usage="seq2seq-attn study [growth|report] CONFIG [--shard I/N] [--max-cells N] [--out DIR] [--no-report] "
              "[--report-dir DIR] [--list]",
        description="study CONFIG: train every (task, mechanism, seed) cell of a study file (resumable), then "
                    "write the report; study growth CONFIG: time and memory against the number of positions; "
                    "study report CONFIG: the report from the results present.")
    p.add_argument("words", nargs="+", metavar="[ACTION] CONFIG",
                   help="a study YAML (see configs/study_*.yaml), optionally after 'growth' or 'report'")
    p.add_argument("--shard", help="I/N: run the cells whose index is I modulo N (default: torchrun's RANK/"
                                   "WORLD_SIZE, else all)")
    p.add_argument("--max-cells", type=int, help="train at most this many cells, then stop (run again to go on)")
    p.add_argument("--out", help="study.out_dir")
    p.add_argument("--no-report", action="store_true", help="do not write the report after the cells")
    p.add_argument("--report-dir", help="write the report files here (e.g. docs/study) instead of study.out_dir")
    p.add_argument("--list", action="store_true",
                   help="list every cell (of --shard, when given) and its state on disk: done (reused), stale, "
                        "failed, partial (resumes from its checkpoint), not run; trains nothing")
    p.set_defaults(func=handle)


def _parse_words(words: list[str]) -> tuple[str, Path]:
    if len(words) == 1 and words[0] not in ACTIONS:
        return "run", Path(words[0])
    if len(words) == 2 and words[0] in ACTIONS:
        return words[0], Path(words[1])
    raise ValueError(f"expected CONFIG, 'growth CONFIG' or 'report CONFIG', got {' '.join(words)!r}")


def _list(cfg, shard: tuple[int, int] | None) -> int:
    """Print one line a cell (index, name, state), then the count of each state."""
    from collections import Counter

    from ..study.runner import list_cells

    listed = list_cells(cfg, shard)
    for cell, state in listed:
        print(f"{cell.index:4d}  {cell.name:<48s} {state}")
    counts = Counter(state for _, state in listed)
    print(f"{len(listed)} cells: " + ", ".join(f"{n} {state}" for state, n in counts.most_common()))
    return 0


def handle(args: argparse.Namespace) -> int:
    from ..study.config import load_study
    from ..study.report import GROWTH_FILE, write_report
    from ..study.runner import parse_shard, run_study
    from ..training.checkpoint import atomic_write_bytes

    action, path = _parse_words(args.words)
    if args.max_cells is not None and args.max_cells < 1:
        raise ValueError(f"--max-cells {args.max_cells}: must be >= 1")
    cfg = load_study(path)
    if args.out:
        cfg.study.out_dir = args.out
    if args.list:
        if action != "run":
            raise ValueError(f"--list goes with 'study CONFIG', not 'study {action}'")
        return _list(cfg, parse_shard(args.shard) if args.shard else None)
    if action == "growth":
        from ..study.growth import rows_to_dict, run_growth

        growth = cfg.growth
        rows = run_growth(growth, log=print)
        out = Path(cfg.study.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        data = {"config": vars(growth), "rows": rows_to_dict(rows)}
        atomic_write_bytes(out / GROWTH_FILE, json.dumps(data, indent=1).encode("utf-8"))
        write_report(cfg, report_dir=args.report_dir)
        return 0
    if action == "report":
        write_report(cfg, report_dir=args.report_dir)
        return 0
    progress = run_study(cfg, parse_shard(args.shard) if args.shard else None, args.max_cells)
    print(f"cells here: {len(progress.trained)} trained, {len(progress.reused)} reused, "
          f"{len(progress.failed)} failed" + (" (stopped at --max-cells)" if progress.stopped_early else ""))
    if not args.no_report:
        write_report(cfg, report_dir=args.report_dir)
    return 1 if progress.failed else 0
