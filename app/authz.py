"""Who may see and do what: the object-level access rules, in one place.

- Call handlers search people, create referrals and read referrals; they do not read cases or
  case timelines.
- Practitioners see cases in their teams' queues (the token's ``queues`` claim) and cases they
  hold or support.
- Duty clinicians see the crisis and duty queues (whatever their teams) and their teams' queues.
- Team leads see and manage (allocate, reallocate, transfer out of) their own teams' queues.
- Case work (docs/domain/after-the-door.md): a duty clinician, or a team lead of the case's
  queue, makes the clinical-review decision; the key worker, a duty clinician or a team lead of
  the queue re-grades urgency; a team lead of the source queue or a duty clinician transfers;
  the key worker, a supporting worker, a team lead of the queue (or a duty clinician on a crisis
  or duty case) records contacts. Every one of these also needs the case to be readable.
- Admins see every queue and the audit trail.
- Reports (docs/domain/reporting.md): team leads read aggregate reports of their own queues,
  admins and commissioners of every queue; a commissioner's counts are disclosure-controlled
  (small numbers suppressed). A commissioner sees nothing person-level: every other route
  refuses the role when the token is checked (app/deps.py), and the rules below admit no
  commissioner either.
- Any staff role may search people and read referrals (the front door is one service: a call
  handler must find a known young person and their referrals while on the call). Every such
  read is audited, one event per person or referral.
- Referring systems submit referrals and read back only their own organisation's referrals
  (same ODS code, so a rotated key still reads what the old key sent); never people, cases or
  case timelines. Another organisation's referral is a 404, as if it did not exist.

Routers and services call these functions; a refusal is a 403 (or a 404 where even existence
must not be revealed) and is itself audited with ``outcome="denied"``. Rules that depend only on
the role (person search for any staff, the audit trail for admins) are the dependencies
``StaffDep`` and ``AdminDep`` in app/deps.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection

from app.security import PERSON_LEVEL_ROLES, Actor, Role

DUTY_QUEUE_KINDS = frozenset({"crisis", "duty"})
CASE_READER_ROLES = frozenset({Role.PRACTITIONER, Role.DUTY_CLINICIAN, Role.TEAM_LEAD, Role.ADMIN})


def can_read_referral(
    actor: Actor,
    *,
    submitted_by_client_id: uuid.UUID | None,
    submitted_by_ods_code: str | None,
) -> bool:
    """May read a referral back: any staff role; a system only its own organisation's."""
    if actor.is_staff:
        return actor.role in PERSON_LEVEL_ROLES
    if not actor.is_system or submitted_by_client_id is None:
        return False
    if actor.client_id == submitted_by_client_id:
        return True
    return actor.ods_code is not None and actor.ods_code == submitted_by_ods_code


def can_see_queue(actor: Actor, queue_id: str, queue_kind: str) -> bool:
    """May list the queue's cases (and claim from it, for roles that hold cases)."""
    if not actor.is_staff or actor.role not in CASE_READER_ROLES:
        return False
    if actor.role == Role.ADMIN:
        return True
    if queue_id in actor.queue_ids:
        return True
    return actor.role == Role.DUTY_CLINICIAN and queue_kind in DUTY_QUEUE_KINDS


def can_claim_from_queue(actor: Actor, queue_id: str, queue_kind: str) -> bool:
    """May become key worker of the next case in the queue."""
    return actor.role in (Role.PRACTITIONER, Role.DUTY_CLINICIAN, Role.TEAM_LEAD) and can_see_queue(
        actor, queue_id, queue_kind
    )


def can_manage_queue(actor: Actor, queue_id: str) -> bool:
    """May allocate and reallocate the queue's cases."""
    if actor.role == Role.ADMIN:
        return True
    return actor.role == Role.TEAM_LEAD and queue_id in actor.queue_ids


def can_read_case(
    actor: Actor,
    *,
    queue_id: str,
    queue_kind: str,
    key_worker_id: str | None,
    supporting_worker_ids: Collection[str] = (),
) -> bool:
    """May read the case and its timeline."""
    if not actor.is_staff or actor.role not in CASE_READER_ROLES:
        return False
    if actor.id is not None and (actor.id == key_worker_id or actor.id in supporting_worker_ids):
        return True
    return can_see_queue(actor, queue_id, queue_kind)


def can_act_on_case(
    actor: Actor, *, queue_id: str, queue_kind: str, key_worker_id: str | None
) -> bool:
    """May record contact, hold, resume, close or confirm the THRIVE grouping.

    The key worker owns the case; team leads (and admins) of its queue may act too, and duty
    clinicians on crisis and duty cases.
    """
    if not actor.is_staff:
        return False
    if actor.id is not None and actor.id == key_worker_id:
        return True
    if can_manage_queue(actor, queue_id):
        return True
    return actor.role == Role.DUTY_CLINICIAN and queue_kind in DUTY_QUEUE_KINDS


def can_review_case(actor: Actor, *, queue_id: str) -> bool:
    """May make the clinical-review decision: a duty clinician, or a team lead (or admin) of
    the case's queue (the duty queue's team lead for a case held there)."""
    if not actor.is_staff:
        return False
    return actor.role == Role.DUTY_CLINICIAN or can_manage_queue(actor, queue_id)


def can_regrade_case(actor: Actor, *, queue_id: str, key_worker_id: str | None) -> bool:
    """May change the case's urgency: its key worker, a duty clinician, or a team lead (or
    admin) of its queue."""
    if not actor.is_staff:
        return False
    if actor.id is not None and actor.id == key_worker_id:
        return True
    return actor.role == Role.DUTY_CLINICIAN or can_manage_queue(actor, queue_id)


def can_transfer_case(actor: Actor, *, queue_id: str) -> bool:
    """May move the case to another queue: a team lead (or admin) of the source queue, or a
    duty clinician."""
    if not actor.is_staff:
        return False
    return actor.role == Role.DUTY_CLINICIAN or can_manage_queue(actor, queue_id)


def can_record_contact_as_supporter(
    actor: Actor, *, supporting_worker_ids: Collection[str]
) -> bool:
    """A supporting worker may record their own contacts with (or about) the young person."""
    return actor.is_staff and actor.id is not None and actor.id in supporting_worker_ids


def can_list_own_cases(actor: Actor) -> bool:
    """May list the cases they hold or support (``GET /v1/me/cases``): roles that hold cases."""
    return actor.is_staff and actor.role in CASE_READER_ROLES


REPORT_ROLES = frozenset({Role.TEAM_LEAD, Role.ADMIN, Role.COMMISSIONER})


def can_read_reports(actor: Actor) -> bool:
    """May read the aggregate reports (``/v1/reports/…``): team leads, admins, commissioners."""
    return actor.is_staff and actor.role in REPORT_ROLES


def report_queues(actor: Actor) -> frozenset[str] | None:
    """The queues a reader's reports cover: a team lead's own (the token's ``queues`` claim);
    None (every queue) for admins and commissioners."""
    return actor.queue_ids if actor.role == Role.TEAM_LEAD else None


def reports_disclosure_controlled(actor: Actor) -> bool:
    """Whether small numbers are suppressed (and counts rounded) for this reader: for
    commissioners, who see aggregates and never the people behind them."""
    return actor.role == Role.COMMISSIONER
