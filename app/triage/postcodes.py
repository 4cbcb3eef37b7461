"""UK postcodes: normalise a full postcode, and find the postcode district the directory routes on.

The shapes follow BS 7666 (the UK government postcode data standard, also used by the Royal Mail
Postcode Address File):

- outward code (the district): ``A9``, ``A99``, ``AA9``, ``AA99``, ``A9A`` or ``AA9A``, where
  the first letter is never Q, V or X, a second letter is never I, J or Z, a letter in third place
  is one of A-H, J, K, P, S, T, U, W and a letter in fourth place one of A, B, E, H, M, N, P, R,
  V-Y;
- inward code: a digit and two letters, never C, I, K, M, O or V;
- plus the one historic exception, ``GIR 0AA``.

Only the shape is checked: a well-shaped postcode need not exist. A district the directory does not
serve is the ruleset's business (OUT_OF_AREA), not this module's.
"""

from __future__ import annotations

import re

_OUTWARD = (
    r"(?:"
    r"[A-PR-UWYZ][0-9][0-9]?"  # A9, A99
    r"|[A-PR-UWYZ][A-HK-Y][0-9][0-9]?"  # AA9, AA99
    r"|[A-PR-UWYZ][0-9][A-HJKPSTUW]"  # A9A
    r"|[A-PR-UWYZ][A-HK-Y][0-9][ABEHMNPRV-Y]"  # AA9A
    r"|GIR"  # the Girobank exception; its only inward code is 0AA
    r")"
)
_INWARD = r"[0-9][ABD-HJLNP-UW-Z]{2}"

# Matched against the input upper-cased with all whitespace removed: the inward code is always
# exactly three characters, so the split between the halves is unambiguous without the space.
_FULL_POSTCODE = re.compile(rf"({_OUTWARD})({_INWARD})")
_OUTWARD_CODE = re.compile(_OUTWARD)
_WHITESPACE = re.compile(r"\s+")


def _split(raw: str) -> tuple[str, str] | None:
    """The (outward, inward) halves of a full postcode, or None if ``raw`` is not one."""
    match = _FULL_POSTCODE.fullmatch(_WHITESPACE.sub("", raw).upper())
    if match is None:
        return None
    outward, inward = match.groups()
    if outward == "GIR" and inward != "0AA":
        return None
    return outward, inward


def normalise_postcode(raw: str) -> str | None:
    """A full UK postcode in any case and spacing, in its canonical form (``"NR1 3AB"``).

    Returns None when ``raw`` is not the shape of a full postcode (an outward code alone is not).
    """
    halves = _split(raw)
    return None if halves is None else f"{halves[0]} {halves[1]}"


def postcode_district(raw: str) -> str | None:
    """The outward code (``"NR1"``) of a full postcode, or of a bare outward code.

    Any case and spacing is accepted. A bare outward code must not contain inner whitespace
    (``"NR1 0"`` is a broken full postcode, not the district NR10). Returns None when unusable.
    """
    halves = _split(raw)
    if halves is not None:
        return halves[0]
    candidate = raw.strip().upper()
    return candidate if is_outward_code(candidate) else None


def is_outward_code(value: str) -> bool:
    """Whether ``value`` is exactly an outward code in canonical (upper-case, unspaced) form."""
    return value != "GIR" and _OUTWARD_CODE.fullmatch(value) is not None
