"""Postcode normalisation and Europe/London ages, the two derived inputs every rule reads."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from app.triage import age_on, local_date, normalise_postcode, postcode_district


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        pytest.param("nr1 3ab", "NR1 3AB", id="lower-case"),
        pytest.param("NR13AB", "NR1 3AB", id="no-space"),
        pytest.param(" Nr1  3AB ", "NR1 3AB", id="odd-spacing"),
        pytest.param("NR10 1AA", "NR10 1AA", id="AA99"),
        pytest.param("m1 1aa", "M1 1AA", id="A9"),
        pytest.param("B33 8TH", "B33 8TH", id="A99"),
        pytest.param("W1A 0AX", "W1A 0AX", id="A9A"),
        pytest.param("ec1a 1bb", "EC1A 1BB", id="AA9A"),
        pytest.param("PE14\t9AA", "PE14 9AA", id="tab"),
        pytest.param("gir0aa", "GIR 0AA", id="GIR-exception"),
        pytest.param("NR1 3A", None, id="short-inward"),
        pytest.param("NR1", None, id="outward-only"),
        pytest.param("NR1 3CB", None, id="inward-letter-C-never-used"),
        pytest.param("QR1 3AB", None, id="first-letter-Q-never-used"),
        pytest.param("GIR 1AA", None, id="GIR-only-0AA"),
        pytest.param("", None, id="empty"),
        pytest.param("not a postcode", None, id="words"),
    ],
)
def test_normalise_postcode(raw: str, canonical: str | None) -> None:
    assert normalise_postcode(raw) == canonical


@pytest.mark.parametrize(
    ("raw", "district"),
    [
        pytest.param("nr1 3ab", "NR1", id="full-lower"),
        pytest.param("NR13AB", "NR1", id="full-no-space-is-NR1-not-NR13"),
        pytest.param("NR133AB", "NR13", id="full-no-space-NR13"),
        pytest.param("NR10 1AA", "NR10", id="NR10"),
        pytest.param(" nr10 ", "NR10", id="bare-outward"),
        pytest.param("ip22", "IP22", id="bare-IP22"),
        pytest.param("NR1 0", None, id="broken-full-postcode-is-not-a-district"),
        pytest.param("N R1", None, id="split-outward"),
        pytest.param("12345", None, id="digits"),
        pytest.param("", None, id="empty"),
    ],
)
def test_postcode_district(raw: str, district: str | None) -> None:
    assert postcode_district(raw) == district


@pytest.mark.parametrize(
    ("born", "on", "age"),
    [
        pytest.param(date(2000, 2, 29), date(2026, 2, 28), 25, id="29-Feb-on-28-Feb"),
        pytest.param(date(2000, 2, 29), date(2026, 3, 1), 26, id="29-Feb-on-1-Mar"),
        pytest.param(date(2000, 2, 29), date(2028, 2, 29), 28, id="29-Feb-in-leap-year"),
        pytest.param(date(2000, 6, 15), date(2026, 6, 14), 25, id="day-before-birthday"),
        pytest.param(date(2000, 6, 15), date(2026, 6, 15), 26, id="on-birthday"),
        pytest.param(date(2026, 6, 15), date(2026, 6, 15), 0, id="born-today"),
    ],
)
def test_age_on(born: date, on: date, age: int) -> None:
    assert age_on(born, on) == age


def test_age_on_refuses_a_birth_after_the_date() -> None:
    with pytest.raises(ValueError, match="after"):
        age_on(date(2026, 6, 16), date(2026, 6, 15))


@pytest.mark.parametrize(
    ("moment", "london_date"),
    [
        pytest.param(datetime(2026, 6, 30, 23, 30, tzinfo=UTC), date(2026, 7, 1), id="BST"),
        pytest.param(datetime(2026, 1, 31, 23, 30, tzinfo=UTC), date(2026, 1, 31), id="GMT"),
        pytest.param(
            datetime(2026, 7, 1, 0, 30, tzinfo=timezone(timedelta(hours=2))),
            date(2026, 6, 30),
            id="other-offset",
        ),
        pytest.param(
            datetime(2026, 7, 1, 0, 30, tzinfo=ZoneInfo("Europe/London")),
            date(2026, 7, 1),
            id="already-london",
        ),
    ],
)
def test_local_date(moment: datetime, london_date: date) -> None:
    assert local_date(moment) == london_date


def test_local_date_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="aware"):
        local_date(datetime(2026, 7, 1, 12, 0))  # naive on purpose
