"""``report.html``: the study's Markdown report as one self-contained page in the explorer's style
(:mod:`seq2seq_attn.explore.page`, view ``study``): the same headings, paragraphs and tables, the figures
inline as base64 PNG, and a task filter over the tables. Built from ``report.md`` itself, so the two never
disagree."""

from __future__ import annotations

import base64
import re
from pathlib import Path

from ..explore.page import write_page

_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)]+)\)")


def _cells(line: str) -> list[str]:
    return [c.strip().replace("`", "").replace("**", "") for c in line.strip().strip("|").split("|")]


def markdown_sections(text: str, folder: Path) -> list[dict]:
    """The subset of Markdown the report writes (``#``/``##``/``###`` headings, paragraphs, pipe tables,
    ``![alt](file.png)`` images read from ``folder``) as sections of blocks for the page."""
    sections: list[dict] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## ") or line.startswith("### "):
            sections.append({"heading": line.lstrip("#").strip(), "level": line.count("#", 0, 3), "blocks": []})
        elif line.startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith("| ---"):
            rows, i = [], i + 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            _blocks(sections).append({"kind": "table", "header": _cells(line), "rows": rows})
            continue
        elif (m := _IMAGE.fullmatch(line.strip())) and (folder / m.group(2)).is_file():
            png = base64.b64encode((folder / m.group(2)).read_bytes()).decode("ascii")
            _blocks(sections).append({"kind": "img", "alt": m.group(1), "png": png})
        elif line.strip() and not line.startswith("# "):
            _blocks(sections).append({"kind": "p", "text": line.replace("**", "").replace("`", "")})
        i += 1
    return sections


def _blocks(sections: list[dict]) -> list[dict]:
    if not sections:
        sections.append({"heading": "", "level": 2, "blocks": []})
    return sections[-1]["blocks"]


def write_html(report_md: Path, title: str, tasks: list[str]) -> Path:
    """``report.html`` beside ``report_md`` (written atomically by the explorer's page writer)."""
    text = report_md.read_text(encoding="utf-8")
    first = next((ln for ln in text.splitlines()[1:] if ln.strip()), "")
    data = {"notes": first.replace("`", ""), "tasks": tasks, "sections": markdown_sections(text, report_md.parent)}
    return write_page(report_md.with_suffix(".html"), "study", data, title)
