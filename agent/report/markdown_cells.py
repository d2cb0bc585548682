"""Markdown that reads the same on GitHub and GitLab: tables whose cells survive any text
(pipes, HTML, line breaks, backticks), code spans and fences, links, folded long tables.

Pure: text in, Markdown text out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

# Tables longer than this fold into <details>, which both GitHub and GitLab render.
FOLD_ROWS = 10
BAR_WIDTH = 20
_SAFE_URL = re.compile(r"^https?://[^\s()<>|\[\]`]+$")
_DIGEST = re.compile(r"@sha256:([0-9a-f]{12})[0-9a-f]{52}$")


def progress_bar(percent: int, width: int = BAR_WIDTH) -> str:
    """`[###.................] 16%`: a cell is filled only once its share is complete."""
    clamped = max(0, min(percent, 100))
    filled = clamped * width // 100
    return f"[{'#' * filled}{'.' * (width - filled)}] {clamped}%"


def duration_text(seconds: int) -> str:
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def section(title: str, body: list[str]) -> list[str]:
    return [f"## {title}", "", *body, ""]


def table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def folded(summary: str, lines: list[str]) -> list[str]:
    """A table (header, rule, rows) folded under `summary` when it has many rows."""
    if len(lines) - 2 <= FOLD_ROWS:
        return lines
    # The blank line after <summary> is what makes both forges render the table inside.
    return ["<details>", f"<summary>{summary}</summary>", "", *lines, "", "</details>"]


def cell(text: str) -> str:
    """Text for a table cell (or any inline place): no raw HTML, no cell breaks, and line
    breaks kept as <br>, the one line break both forges render inside a table."""
    escaped = (
        text.replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )
    lines = [line.strip() for line in escaped.replace("\r\n", "\n").split("\n")]
    return "<br>".join(lines).strip()


inline = cell


def code(text: str) -> str:
    """A code span that survives any backticks in `text` and sits safely in a table: table
    rows are split before code spans are seen, so pipes are escaped here too, and a
    backslash before a pipe is doubled so that it cannot escape the escape."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    body = " ".join(text.split())
    body = re.sub(r"(\\*)\|", lambda m: m.group(1) * 2 + "\\|", body)
    pad = " " if body.startswith("`") or body.endswith("`") else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def fenced(text: str) -> list[str]:
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}text", *text.rstrip("\n").split("\n"), fence]


def value(value: Any) -> str:
    return "(absent)" if value is None else code(json.dumps(value, sort_keys=True))


def link(text: str, url: str | None) -> str:
    if url and _SAFE_URL.match(url):
        return f"[{cell(text)}]({url})"
    return cell(text)


def names(names: Iterable[str]) -> str:
    return ", ".join(inline(name) for name in names) or "none"


def short_image(image: str) -> str:
    """Digests are 64 hex digits; 12 tell history entries apart, as `git log` does."""
    return _DIGEST.sub(r"@sha256:\1…", image)
