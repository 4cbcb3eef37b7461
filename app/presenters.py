"""Build API response bodies from stored records and service results: one place for each
resource's presentation (referrals, persons, the service directory), shared by every router
that returns it."""

from __future__ import annotations

from typing import Any

from app.equity import ethnic_category_display, gender_display
from app.models import Case, Referral, TriageDecision
from app.schemas.directory import LocalityRead, QueueSummary, RulesetRead, ServicesRead
from app.schemas.person import PersonRead, PersonReferralSummary, PersonSearchRead
from app.schemas.referral import (
    CodedRead,
    DecisionRead,
    EquityRead,
    JoinedRead,
    PersonLinkRead,
    ReferralCodesRead,
    ReferralRead,
)
from app.services.person_search import PersonFound, ReferralSummary
from app.triage import Ruleset

# What a referring system reads for a rule decided with details another organisation gave.
ON_RECORD_REASON = "Decided using details already held on the young person's record."
# What a referring system reads as the status of a case its referral did not open.
RECEIVED_STATUS = "received"


def referral_status(referral: Referral, case: Case | None) -> str:
    """What a referrer sees: signposted, or the state of the case that holds the referral."""
    if case is None:
        return "signposted"
    return case.status


def _redacted_for_system(output: dict[str, Any]) -> dict[str, Any]:
    """The decision without what the person's record (not this system) supplied: inputs taken
    from the record are left out, and reasons that quote them are replaced."""
    rules = []
    record_stages = set()
    for rule in output.get("rules_fired", []):
        sources = rule.get("sources", {})
        from_record = [key for key, source in sources.items() if source == "record"]
        if from_record:
            record_stages.add(rule["stage"])
            rule = {
                **rule,
                "inputs": {k: v for k, v in rule["inputs"].items() if k not in from_record},
                "reason": ON_RECORD_REASON,
            }
        rules.append(rule)
    eligibility = output["eligibility"]
    if "eligibility" in record_stages:
        eligibility = {
            **eligibility,
            "reasons": [
                {"rule": r["rule"], "detail": ON_RECORD_REASON} for r in eligibility["reasons"]
            ],
        }
    return {**output, "rules_fired": rules, "eligibility": eligibility}


def decision_output_for(decision: TriageDecision, *, for_staff: bool) -> dict[str, Any]:
    """The stored decision as its reader may see it (a referring system: redacted)."""
    return decision.output if for_staff else _redacted_for_system(decision.output)


def referral_read(
    referral: Referral,
    decision: TriageDecision,
    case: Case | None,
    *,
    for_staff: bool,
    case_visible: bool = True,
    person_existed: bool | None = None,
) -> ReferralRead:
    """The referral as its reader may see it.

    Staff see everything, with ``joined`` (when known) and any proposed person link. A
    referring system sees its own referral, the state of the case only when its own referral
    opened it (``case_visible``), and nothing another organisation told us.
    """
    output = decision.output if for_staff else _redacted_for_system(decision.output)
    joined = None
    if for_staff and person_existed is not None:
        joined = JoinedRead(
            person="existing" if person_existed else "new",
            case=(
                "none"
                if case is None
                else "existing"
                if referral.disposition == "joined_case"
                else "new"
            ),
        )
    person_link = None
    if for_staff and referral.person_link is not None and referral.proposed_person_id:
        person_link = PersonLinkRead(
            status=referral.person_link,
            person_id=referral.proposed_person_id,
            decided_by=referral.person_link_decided_by,
            decided_at=referral.person_link_decided_at,
        )
    return ReferralRead(
        id=referral.id,
        reference=referral.reference,
        person_id=referral.person_id,
        channel=referral.channel,
        received_at=referral.received_at,
        status=referral_status(referral, case) if case_visible else RECEIVED_STATUS,
        decision=DecisionRead.model_validate(output),
        case_id=referral.case_id,
        joined=joined,
        incomplete_fields=list(referral.incomplete_fields or []),
        person_link=person_link,
        codes=referral_codes(decision),
        signposting=referral.signposting,
        # Staff only: a referring system never reads equity answers back, not even its own
        # (docs/domain/equity-data.md).
        equity=equity_read(referral) if for_staff else None,
    )


def equity_read(referral: Referral) -> EquityRead:
    """The equity monitoring answers given with a referral, as codes and words."""
    gender = gender_display(referral.gender_code)
    ethnic = ethnic_category_display(referral.ethnic_category_code)
    return EquityRead(
        gender=CodedRead(code=referral.gender_code, display=gender)
        if referral.gender_code is not None and gender is not None
        else None,
        ethnic_category=CodedRead(code=referral.ethnic_category_code, display=ethnic)
        if referral.ethnic_category_code is not None and ethnic is not None
        else None,
    )


def referral_codes(decision: TriageDecision) -> ReferralCodesRead | None:
    """The MHSDS codes recorded with the decision (absent on referrals from before them)."""
    codes = decision.output.get("codes")
    return ReferralCodesRead.model_validate(codes) if codes else None


def person_referral_summary(summary: ReferralSummary) -> PersonReferralSummary:
    """One of a person's referrals as staff see it in search results."""
    return PersonReferralSummary(
        id=summary.referral.id,
        reference=summary.referral.reference,
        channel=summary.referral.channel,
        received_at=summary.referral.received_at,
        status=summary.status,
        urgency_code=summary.decision.urgency_code,
        route_kind=summary.decision.route_kind,
        queue_id=summary.case.queue_id if summary.case is not None else None,
        case_id=summary.referral.case_id,
    )


def person_search_read(found: list[PersonFound]) -> PersonSearchRead:
    """Person search results: each match with what was matched on and their referrals."""
    return PersonSearchRead(
        matches=[
            PersonRead(
                id=f.person.id,
                nhs_number=f.person.nhs_number,
                given_name=f.person.given_name,
                family_name=f.person.family_name,
                date_of_birth=f.person.date_of_birth,
                postcode=f.person.postcode,
                send=f.person.send,
                looked_after=f.person.looked_after,
                verified=f.person.verified,
                claimed_nhs_number=f.person.claimed_nhs_number,
                match=f.match,
                matched_on=list(f.matched_on),
                referrals=[person_referral_summary(r) for r in f.referrals],
            )
            for f in found
        ]
    )


def services_read(ruleset: Ruleset) -> ServicesRead:
    """The service directory of the ruleset in force: localities with their sites, and queues."""
    queues = {
        q.id: QueueSummary(
            id=q.id, name=q.name, kind=q.kind, locality_id=q.locality_id, open_24_7=q.open_24_7
        )
        for q in ruleset.queues
    }
    return ServicesRead(
        ruleset_version=ruleset.version,
        localities=[
            LocalityRead(
                id=loc.id,
                name=loc.name,
                postcode_districts=list(loc.postcode_districts),
                community_base=queues[loc.community_base_queue_id],
                one_stop_shop=queues[loc.one_stop_shop_queue_id],
            )
            for loc in ruleset.localities
        ],
        queues=list(queues.values()),
    )


def ruleset_read(ruleset: Ruleset) -> RulesetRead:
    """The ruleset in force: its version and the content it was loaded from."""
    return RulesetRead(version=ruleset.version, label=ruleset.label, content=ruleset.content)
