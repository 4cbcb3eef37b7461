"""Matching: which services fit one person, and in what order (a pure function).

A service fits when it is active, the person's age (in whole years on the Europe/London date
the referral was received) is within its bounds, its areas cover their postcode district (or
it is national), a home-area-only service is offered only to someone out of area, and a
service for particular needs only when one of their needs is listed. Local services come
first (the district itself, then its postcode area), national services last, each in the
directory's order. Rules: docs/domain/signposting-and-messages.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.signposting.directory import ServiceConfig, SignpostingDirectory

_AREA_LETTERS = re.compile(r"^[A-Z]+")

# Where a match sits in the list: the district named, then its postcode area, then national.
_DISTRICT, _AREA, _NATIONAL = 0, 1, 2


@dataclass(frozen=True, slots=True)
class SignpostQuery:
    """What matching reads about a person."""

    age_years: int | None
    """None when unknown: every age-bounded service is offered (its bounds are shown)."""
    postcode_district: str | None
    """The outward code (``NR1``); None when unknown: only national services are offered."""
    in_area: bool = True
    """Whether a locality of the ruleset serves the district (False: out of area)."""
    needs: frozenset[str] = field(default_factory=frozenset)


def postcode_area(district: str) -> str:
    """The postcode area (the leading letters) of a district: ``NR1`` -> ``NR``."""
    match = _AREA_LETTERS.match(district)
    return match.group(0) if match else district


def _tier(service: ServiceConfig, district: str | None) -> int | None:
    if service.is_national:
        return _NATIONAL
    if district is None:
        return None
    if district in service.areas:
        return _DISTRICT
    if postcode_area(district) in service.areas:
        return _AREA
    return None


def match_services(
    directory: SignpostingDirectory, query: SignpostQuery
) -> tuple[ServiceConfig, ...]:
    """The services that fit the person, local first and national last."""
    district = query.postcode_district.strip().upper() if query.postcode_district else None
    ranked: list[tuple[int, int, ServiceConfig]] = []
    for position, service in enumerate(directory.services):
        if service.status != "active" or not service.fits_age(query.age_years):
            continue
        if service.out_of_area_only and (district is None or query.in_area):
            continue
        if service.needs and not query.needs.intersection(service.needs):
            continue
        tier = _tier(service, district)
        if tier is not None:
            ranked.append((tier, position, service))
    ranked.sort(key=lambda entry: (entry[0], entry[1]))
    return tuple(service for _, _, service in ranked)


def needs_signposting(eligibility_outcome: str, urgency_code: str) -> bool:
    """Ineligible people and advice-only (G) requests are given services to turn to."""
    return eligibility_outcome == "ineligible" or urgency_code == "G"


def query_for_decision(decision: Mapping[str, Any], needs: Iterable[str] = ()) -> SignpostQuery:
    """The matching query from a stored decision (``Decision.to_dict()``): its age on the
    received date, postcode district and locality (none: out of area when the district is known)."""
    district = decision.get("postcode_district")
    return SignpostQuery(
        age_years=decision.get("age_years"),
        postcode_district=district,
        in_area=district is None or decision.get("locality_id") is not None,
        needs=frozenset(n.strip().lower() for n in needs),
    )


def service_public(directory: SignpostingDirectory, service: ServiceConfig) -> dict[str, Any]:
    """A service in the public API's shape (docs/domain/signposting-and-messages.md)."""
    voice, text = service.phone_of("voice"), service.phone_of("text")
    return {
        "id": service.id,
        "name": service.name,
        "organisation": directory.organization(service).name,
        "description": service.description,
        "phone": voice.number if voice else None,
        "text": (text.description or f"Text {text.number}") if text else None,
        "url": service.url,
        "email": service.email,
        "min_age": service.minimum_age,
        "max_age": service.maximum_age,
        "areas": list(service.areas),
        "opening_times": "; ".join(s.description for s in service.schedules) or None,
        "illustrative": service.illustrative,
    }


def signposting_for(directory: SignpostingDirectory, query: SignpostQuery) -> list[dict[str, Any]]:
    """The matched services in the public shape: what a referral stores and a person is shown."""
    return [service_public(directory, service) for service in match_services(directory, query)]
