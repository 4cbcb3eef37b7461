"""Plain-language words shown to young people and families: crisis contacts and next steps."""

from __future__ import annotations

from app.schemas.referral import CrisisBlock, CrisisContact
from app.triage.decision import RouteKind, UrgencyCode

URGENT_CODES = frozenset({UrgencyCode.A, UrgencyCode.B, UrgencyCode.C})

CRISIS_CONTACTS: tuple[CrisisContact, ...] = (
    CrisisContact(
        name="Emergency services",
        how="Call 999",
        when="If you are in danger now or have hurt yourself badly",
    ),
    CrisisContact(
        name="NHS 111",
        how="Call 111 and choose the mental health option",
        when="Any time, day or night",
    ),
    CrisisContact(name="Shout", how="Text SHOUT to 85258", when="Any time, free text support"),
    CrisisContact(name="Samaritans", how="Call 116 123", when="Any time, free"),
    CrisisContact(name="Childline", how="Call 0800 1111", when="If you are under 19"),
    CrisisContact(name="PAPYRUS HOPELINE247", how="Call 0800 068 4141", when="If you are under 35"),
)


def crisis_block(*, urgent: bool = True) -> CrisisBlock:
    """The crisis contacts: led by "you may need help now" when the answers are urgent, else
    offered (when we cannot contact them, they must know where to turn)."""
    message = (
        "From what you have told us, you may need help now. Please do not wait for us to "
        "contact you: if you are in danger, call 999. You can also use these services now."
        if urgent
        else "If you need to talk to someone now, or you are in danger, these services can "
        "help at any time. In an emergency, call 999."
    )
    return CrisisBlock(message=message, contacts=list(CRISIS_CONTACTS))


# Where to turn when we cannot reach them (national and always open, or walking in).
TALK_TO_SOMEONE = (
    "call NHS 111 and choose the mental health option, or drop in to one of our Community "
    "Bases or One Stop Shops"
)


def next_steps(
    code: UrgencyCode, route: RouteKind, reference: str, *, contact_route: bool = True
) -> str:
    """What happens next, in words that match the urgency of the decision.

    Never a promise that cannot be kept: with no phone number or email for anyone, we say we
    cannot contact them and what to do now (docs/domain/trust-and-safety.md).
    """
    quote = f"Your reference is {reference}. Please quote it if you contact us."
    if not contact_route:
        urgent_now = "If you are in danger now, call 999. " if code in URGENT_CODES else ""
        return (
            f"{urgent_now}We have received what you told us, but you did not leave a phone "
            "number or email, so we have no way to contact you. Our team can see what you "
            f"told us. To talk to someone, {TALK_TO_SOMEONE}, and quote your reference. You can "
            "also fill in the form again with a way to contact you. If you need help now, use "
            f"the contacts on this page. {quote}"
        )
    if code is UrgencyCode.A:
        return (
            "You told us you are in danger now. Call 999 straight away. Our crisis team has "
            f"your referral and will also try to contact you. {quote}"
        )
    if code is UrgencyCode.B:
        return (
            "Our crisis team will try to contact you within 4 hours. If you feel unsafe before "
            f"then, call 999 or NHS 111 (mental health option). {quote}"
        )
    if code is UrgencyCode.C:
        return (
            "A clinician will contact you within 24 hours. If things get worse before then, "
            f"use the contacts on this page. {quote}"
        )
    if route is RouteKind.SIGNPOST:
        return (
            "Thank you. From what you have told us, another service is better placed to help "
            "you. The services listed here can help: please contact one of them yourself. If you "
            "need help urgently, call "
            f"NHS 111 (mental health option). {quote}"
        )
    if code is UrgencyCode.D:
        return (
            "A member of our team will contact you within 3 days to talk about how we can "
            f"help. {quote}"
        )
    if code is UrgencyCode.G:
        return (
            f"Our access team will be in touch within 7 days with advice and information. {quote}"
        )
    return (
        "Thank you for reaching out. A member of our team will contact you within 4 weeks, "
        f"usually sooner, to talk about what would help. {quote}"
    )
