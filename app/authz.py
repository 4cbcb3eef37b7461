"""Who may see and do what: the object-level access rules, in one place.

- Call handlers search people, create referrals and read referrals; they do not read cases or
  case timelines.
- Practitioners see cases in their teams' queues (the token's ``queues`` claim) and cases they
  hold or support.
- Duty clinicians see the crisis and duty queues (whatever their teams) and their teams' queues.
- Team leads see and manage (allocate, reallocate) their own teams' queues.
- Admins see every queue and the audit trail.
- Referring systems read back only the referrals they submitted, never cases.
"""

from __future__ import annotations

from collections.abc import Collection

from app.security import Actor, Role

DUTY_QUEUE_KINDS = frozenset({"crisis", "duty"})
CASE_READER_ROLES = frozenset({Role.PRACTITIONER, Role.DUTY_CLINICIAN, Role.TEAM_LEAD, Role.ADMIN})


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


def can_read_audit(actor: Actor) -> bool:
    return actor.is_staff and actor.role == Role.ADMIN
