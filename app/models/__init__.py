"""SQLAlchemy ORM models, one module per aggregate. Importing this package registers them all."""

from app.models.audit import AuditEvent
from app.models.base import Base
from app.models.case import Case, CaseContact, CaseEvent, CaseSupporter, CaseUrgencyChange
from app.models.directory import Queue, RulesetActivation, RulesetRecord
from app.models.notification import Notification
from app.models.person import Person, PersonChange
from app.models.ratelimit import RateLimitWindow
from app.models.referral import ApiClient, IdempotencyKey, Referral, TriageDecision
from app.models.staff import StaffMember

__all__ = [
    "ApiClient",
    "AuditEvent",
    "Base",
    "Case",
    "CaseContact",
    "CaseEvent",
    "CaseSupporter",
    "CaseUrgencyChange",
    "IdempotencyKey",
    "Notification",
    "Person",
    "PersonChange",
    "Queue",
    "RateLimitWindow",
    "Referral",
    "RulesetActivation",
    "RulesetRecord",
    "StaffMember",
    "TriageDecision",
]
