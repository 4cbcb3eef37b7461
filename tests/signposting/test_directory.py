"""The signposting directory is configuration: validated at load with the bad key named,
versioned by content (docs/domain/signposting-and-messages.md)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.signposting import (
    DEFAULT_SIGNPOSTING_PATH,
    SignpostingError,
    directory_from_content,
    load_signposting,
)


def _content() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DEFAULT_SIGNPOSTING_PATH.read_text(encoding="utf-8"))
    return copy.deepcopy(loaded)


def test_the_packaged_directory_loads_and_is_versioned_by_content() -> None:
    directory = load_signposting()
    assert directory.version.startswith("norfolk-waveney-signposting-2026.1+")
    assert len(directory.version.split("+")[1]) == 12
    again = directory_from_content(_content())
    assert again.version == directory.version
    changed = _content()
    changed["services"][0]["description"] = "Changed."
    assert directory_from_content(changed).version != directory.version


def _service(content: dict[str, Any], service_id: str) -> dict[str, Any]:
    service: dict[str, Any] = next(s for s in content["services"] if s["id"] == service_id)
    return service


def _index(content: dict[str, Any], service_id: str) -> int:
    return next(i for i, s in enumerate(content["services"]) if s["id"] == service_id)


BAD_EDITS = [
    # (what is wrong, edit, text the error must contain)
    ("unknown key", lambda c: _service(c, "shout").update(phone_number="1"), "phone_number"),
    ("age as text", lambda c: _service(c, "childline").update(maximum_age="18"), "maximum_age"),
    (
        "min above max",
        lambda c: _service(c, "childline").update(minimum_age=20),
        "minimum_age is above maximum_age",
    ),
    (
        "not a district",
        lambda c: _service(c, "counselling-norwich").update(areas=["NORWICH"]),
        "areas.0",
    ),
    (
        "http url",
        lambda c: _service(c, "shout").update(url="http://giveusashout.org"),
        "url",
    ),
    (
        "invented phone on an illustrative entry",
        lambda c: _service(c, "counselling-norwich").update(phones=[{"number": "01603 000000"}]),
        "never invent contact details",
    ),
    (
        "unknown organisation",
        lambda c: _service(c, "kooth-norfolk-waveney").update(organization_id="nobody"),
        "organization_id",
    ),
    (
        "duplicate id",
        lambda c: c["services"].append(copy.deepcopy(_service(c, "shout"))),
        "is used twice",
    ),
    (
        "national with local areas",
        lambda c: _service(c, "samaritans").update(areas=["national", "NR1"]),
        "'national' cannot be combined",
    ),
    (
        "no way to reach it",
        lambda c: _service(c, "nhs-find-local-service").pop("url"),
        "at least one way to reach it",
    ),
]


@pytest.mark.parametrize(("case", "edit", "message"), BAD_EDITS, ids=[b[0] for b in BAD_EDITS])
def test_a_bad_directory_is_refused_naming_the_key(case: str, edit: Any, message: str) -> None:
    content = _content()
    edit(content)
    with pytest.raises(SignpostingError) as raised:
        directory_from_content(content)
    assert message in str(raised.value)
    assert any(p.startswith(("services", "organizations")) for p in raised.value.problems)


def test_the_error_names_the_service_by_position() -> None:
    content = _content()
    _service(content, "childline")["maximum_age"] = "eighteen"
    with pytest.raises(SignpostingError) as raised:
        directory_from_content(content)
    assert f"services.{_index(content, 'childline')}.maximum_age" in str(raised.value)


def test_every_age_must_have_a_national_service_open_to_anyone() -> None:
    content = _content()
    # Only under-19s would have a national service left.
    content["services"] = [
        s
        for s in content["services"]
        if not (s["areas"] == ["national"] and s["id"] != "childline")
    ]
    with pytest.raises(SignpostingError) as raised:
        directory_from_content(content)
    assert "no active national service without needs covers age 19" in str(raised.value)


def test_duplicate_yaml_keys_and_computed_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("label: a\nlabel: b\n", encoding="utf-8")
    with pytest.raises(SignpostingError, match="duplicate key"):
        load_signposting(path)
    with pytest.raises(SignpostingError, match="version: computed"):
        directory_from_content({**_content(), "version": "x"})
    with pytest.raises(SignpostingError, match="cannot read"):
        load_signposting(tmp_path / "missing.yaml")
