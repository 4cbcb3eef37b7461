"""The hazard log's evidence exists: every test it names is a test in this repository."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HAZARD_LOG = ROOT / "docs" / "hazard-log.md"
# `tests/test_x.py::test_name` as the log writes evidence.
EVIDENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")
    }


def test_every_test_the_hazard_log_names_exists() -> None:
    cited = EVIDENCE.findall(HAZARD_LOG.read_text())
    assert len(cited) >= 30, "the hazard log cites its evidence as `tests/file.py::test_name`"
    missing = [
        f"{file}::{name}"
        for file, name in cited
        if not (ROOT / file).is_file() or name not in _tests_in(ROOT / file)
    ]
    assert not missing, f"the hazard log names tests that do not exist: {missing}"


def test_every_hazard_has_controls_and_evidence() -> None:
    sections = re.split(r"^## ", HAZARD_LOG.read_text(), flags=re.M)[1:]
    assert sections
    for section in sections:
        title = section.splitlines()[0]
        assert "**Controls.**" in section, title
        assert "**Evidence.**" in section, title
        assert EVIDENCE.search(section), f"{title}: no test named as evidence"
