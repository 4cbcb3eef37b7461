"""Summarise a py-spy ``--format raw`` profile (collapsed stacks) of the intake path.

    python bench/profile_summary.py bench/out/profile_before_run1.txt [--top 25]

Three views, as percentages of all samples of the server process:

- **by package**: each sample goes to the first frame, from the leaf up, that belongs to a
  known package or to ``app`` (standard-library frames are skipped over), so CPU spent inside
  ``json`` on behalf of structlog counts as structlog;
- **app functions, inclusive**: how much of the time is under each ``app/`` function;
- **leaf functions, self**: where the CPU actually burns.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+)(?::(?P<line>\d+))?\)$")
_APP = re.compile(r"(?:^|/)app/(?P<mod>[A-Za-z0-9_/]+)\.py$")


# Leaf functions of threads that are waiting, not working (py-spy's idle detection misses some,
# e.g. anyio's worker threads parked on a Condition).
IDLE_LEAVES = ("Condition.wait", "Event.wait", "_worker", "select (selectors.py")


def parse(path: Path, under: str | None = None) -> tuple[list[tuple[list[str], int]], int]:
    """(frames root-first, count) per collapsed stack line, and the idle samples dropped.

    With ``under``, only stacks with a frame containing that text are kept.
    """
    stacks = []
    idle = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        # py-spy prefixes the thread/process: "process 123:\"python ...\"" — drop non-frames.
        frames = [f for f in frames if _FRAME.match(f)]
        if frames and frames[-1].startswith(IDLE_LEAVES):
            idle += int(count)
            continue
        if under and not any(under in f for f in frames):
            continue
        stacks.append((frames, int(count)))
    return stacks, idle


def _where(frame: str) -> tuple[str, str]:
    """(function, file) of a frame."""
    match = _FRAME.match(frame)
    if not match:
        return frame, ""
    return match["func"], match["file"]


def _top_level(file: str) -> str:
    """``sqlalchemy`` for ``sqlalchemy/orm/session.py`` (py-spy prints paths from sys.path)."""
    for marker in ("site-packages/", "dist-packages/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    file = re.sub(r"^.*/lib/python3\.\d+/", "", file)
    return file.split("/", 1)[0].removesuffix(".py")


def bucket(frame: str) -> str | None:
    """The package (or ``app.<module>``) a frame belongs to; None for the standard library."""
    _func, file = _where(frame)
    if m := _APP.search(file):
        return "app." + m["mod"].replace("/", ".")
    top = _top_level(file)
    if not top or top in sys.stdlib_module_names:
        return None
    return top


def by_package(stacks: list[tuple[list[str], int]]) -> Counter[str]:
    totals: Counter[str] = Counter()
    for frames, count in stacks:
        owner = None
        for frame in reversed(frames):
            owner = bucket(frame)
            if owner is not None:
                break
        if owner is None:
            func, file = _where(frames[-1]) if frames else ("?", "")
            owner = f"stdlib.{_top_level(file)}" if file else f"other:{func}"
        totals[owner] += count
    return totals


def app_inclusive(stacks: list[tuple[list[str], int]]) -> Counter[str]:
    totals: Counter[str] = Counter()
    for frames, count in stacks:
        seen = set()
        for frame in frames:
            func, file = _where(frame)
            if m := _APP.search(file):
                key = f"app.{m['mod'].replace('/', '.')}:{func}"
                if key not in seen:
                    seen.add(key)
                    totals[key] += count
    return totals


def leaf_self(stacks: list[tuple[list[str], int]]) -> Counter[str]:
    totals: Counter[str] = Counter()
    for frames, count in stacks:
        if frames:
            func, file = _where(frames[-1])
            totals[f"{func} ({file})"] += count
    return totals


def render(path: Path, top: int, under: str | None = None) -> str:
    stacks, idle = parse(path, under)
    total = sum(c for _, c in stacks) or 1
    scope = f" under {under!r}" if under else ""
    lines = [f"# {path.name}: {total} busy samples{scope} ({idle} idle-thread samples dropped)", ""]
    for title, counter in (
        ("by package (leaf-up attribution)", by_package(stacks)),
        ("app functions, inclusive", app_inclusive(stacks)),
        ("leaf functions, self", leaf_self(stacks)),
    ):
        lines.append(f"## {title}")
        for name, count in counter.most_common(top):
            lines.append(f"{100 * count / total:6.1f}%  {name}")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("profiles", type=Path, nargs="+")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--under",
        default=None,
        help="keep only stacks through a frame containing this text, e.g. "
        "RequestContextMiddleware.__call__ (request handling only)",
    )
    args = parser.parse_args(argv)
    for path in args.profiles:
        print(render(path, args.top, args.under))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
