"""Copy the NHS.UK frontend's compiled CSS, JavaScript and assets into ``app/web/static/nhsuk``.

Run after ``npm ci`` (which installs the version pinned in ``package-lock.json``)::

    npm ci && python scripts/vendor_nhsuk.py          # refresh the committed files
    python scripts/vendor_nhsuk.py --check            # CI: committed files match node_modules

The pages are served under a strict Content-Security-Policy (everything from 'self'), so the
copy is adjusted on the way in:

- the ``@font-face`` rules that load Frutiger from assets.nhs.uk are removed: no external fonts
  (the NHS font stack falls back to Arial);
- root-relative ``url(/assets/...)`` references become relative to the stylesheet, so they resolve
  under ``/static/nhsuk/``;
- ``sourceMappingURL`` comments are dropped (the maps are not vendored).

The result is committed, so serving the app needs neither Node.js nor npm.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "node_modules" / "nhsuk-frontend"
SOURCE = PACKAGE / "dist" / "nhsuk"
TARGET = ROOT / "app" / "web" / "static" / "nhsuk"

CSS_NAME = "nhsuk-frontend.min.css"
JS_NAME = "nhsuk-frontend.min.js"

_FONT_FACE = re.compile(r"@font-face\{[^}]*\}")
_ROOT_ASSETS = re.compile(r"url\((['\"]?)/assets/")
_SOURCE_MAP = re.compile(r"\n?/[*/]# sourceMappingURL=[^\n]*\n?")
_EXTERNAL_URL = re.compile(r"url\((['\"]?)https?:")


def adjust_css(css: str) -> str:
    """The stylesheet without external fonts, with asset URLs relative to itself."""
    css = _FONT_FACE.sub("", css)
    css = _ROOT_ASSETS.sub(r"url(\1assets/", css)
    css = _SOURCE_MAP.sub("\n", css).rstrip() + "\n"
    if _EXTERNAL_URL.search(css):
        raise SystemExit("the NHS.UK frontend stylesheet still loads something from another site")
    return css


def adjust_js(js: str) -> str:
    return _SOURCE_MAP.sub("\n", js).rstrip() + "\n"


def build(into: Path) -> str:
    """Write the adjusted copy into ``into``; returns the vendored version."""
    if not SOURCE.is_dir():
        raise SystemExit(f"{SOURCE} is missing: run `npm ci` first")
    version = str(json.loads((PACKAGE / "package.json").read_text())["version"])
    into.mkdir(parents=True, exist_ok=True)
    (into / CSS_NAME).write_text(adjust_css((SOURCE / CSS_NAME).read_text()))
    (into / JS_NAME).write_text(adjust_js((SOURCE / JS_NAME).read_text()))
    shutil.copytree(SOURCE / "assets", into / "assets", dirs_exist_ok=True)
    (into / "VERSION").write_text(version + "\n")
    (into / "README.md").write_text(
        f"# NHS.UK frontend {version} (vendored)\n\n"
        "Compiled files from the npm package `nhsuk-frontend` (MIT licence, "
        "https://github.com/nhsuk/nhsuk-frontend), adjusted for this service's "
        "Content-Security-Policy: no external fonts, asset URLs relative to the stylesheet.\n\n"
        "Do not edit by hand. Regenerate with `npm ci && python scripts/vendor_nhsuk.py`.\n"
    )
    return version


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="fail if the committed files differ from a fresh copy of node_modules",
    )
    args = parser.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as scratch:
            version = build(Path(scratch))
            expected, committed = _files(Path(scratch)), _files(TARGET)
        if expected != committed:
            changed = sorted(set(expected) ^ set(committed)) or sorted(
                name for name in expected if expected[name] != committed.get(name)
            )
            print(
                f"app/web/static/nhsuk is not a fresh copy of nhsuk-frontend {version}; "
                f"differs in: {', '.join(changed[:10])}. "
                "Run `npm ci && python scripts/vendor_nhsuk.py`.",
                file=sys.stderr,
            )
            return 1
        print(f"app/web/static/nhsuk matches nhsuk-frontend {version}")
        return 0
    if TARGET.exists():
        shutil.rmtree(TARGET)
    version = build(TARGET)
    print(f"vendored nhsuk-frontend {version} into {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
