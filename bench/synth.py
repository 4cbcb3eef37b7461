"""Synthetic, realistic-looking people and referral bodies for the benchmarks.

Nothing here is real patient data: NHS numbers come from the never-issued 999 range, names are
combinations of common given and family names, postcodes are well-shaped codes in the default
directory's districts (plus a few out of area), dates of birth span ages 0-25.

Every generator takes a ``random.Random`` so a seed reproduces the same data.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Common given names in England and Wales (ONS baby names, several decades and communities),
# with a few accents, apostrophes and hyphens so name normalisation is exercised.
GIVEN_NAMES = _words(
    """
    Oliver George Noah Arthur Harry Leo Muhammad Jack Charlie Oscar Jacob Henry Thomas Freddie
    Alfie Theo William Theodore Archie Joshua Alexander James Isaac Edward Lucas Tommy Finley Max
    Logan Ethan Mohammed Teddy Benjamin Arlo Joseph Sebastian Harrison Elijah Adam Daniel Samuel
    Louie Mason Reuben Albie Rory Jaxon Hugo Luca Zachary Reggie Hunter Louis Dylan Albert David
    Jude Frankie Roman Ezra Toby Riley Carter Ronnie Frederick Gabriel Stanley Bobby Jenson Ryan
    Kai Liam Callum Connor Kyle Jamie Ben Matthew Luke Nathan Aaron Jordan Kieran Bradley Declan
    Ravi Arjun Rohan Aarav Kacper Jakub Szymon Filip Mateusz Tomasz Olivia Amelia Isla Ava Ivy
    Freya Lily Florence Mia Willow Rosie Sophia Isabella Grace Daisy Sienna Poppy Elsie Emily Ella
    Evelyn Phoebe Sofia Evie Charlotte Harper Millie Matilda Maya Sophie Alice Emilia Isabelle
    Ruby Luna Maisie Aria Penelope Mila Bonnie Eva Hallie Eliza Ada Violet Esme Arabella Imogen
    Jessica Delilah Lottie Thea Layla Harriet Nancy Zara Chloe Megan Jade Holly Lauren Hannah
    Bethany Courtney Shannon Abigail Amber Leah Niamh Aoife Siobhan Ayesha Fatima Maryam Aisha
    Zainab Priya Ananya Amara Zoë Chloé Renée Noémie Anaïs Zofia Julia Maja Hanna Oliwia Kayla
    Tiana Precious Blessing Chidera Mary-Jane Anne-Marie Jean-Luc Lily-Rose Ellie-May Alfie-James
    D'Arcy Ka'Shawn
"""
)

FAMILY_NAMES = _words(
    """
    Smith Jones Taylor Brown Williams Wilson Johnson Davies Patel Robinson Wright Thompson Evans
    Walker White Roberts Green Hall Thomas Clarke Jackson Wood Harris Edwards Turner Martin Cooper
    Hill Ward Hughes Moore Clark King Harrison Lewis Baker Lee Allen Morris Khan Scott Watson
    Davis Parker James Bennett Young Phillips Richardson Mitchell Bailey Carter Cook Singh Shaw
    Bell Collins Morgan Kelly Begum Miller Cox Hussain Marshall Simpson Price Anderson Adams
    Wilkinson Ali Ahmed Foster Ellis Murphy Chapman Mason Gray Richards Webb Griffiths Hunt Palmer
    Campbell Holmes Mills Rogers Barnes Knight Matthews Barker Powell Stevens Kaur Dixon Lloyd
    Fisher Russell Harvey Butler Jenkins Hamilton Graham Stewart Sutton Dawson Gibson Rose
    Atkinson Pearson Lawrence Hudson Reid Burton Spencer Andrews Cole Fox Watts Ross Webster
    Gardner Stone Wells Dean Lane Hart Payne Armstrong Hayes Walsh Rahman Gordon Ford Carr Hewitt
    Lambert Howard Chambers Rowe Gill Woods Barrett Cunningham Mann Black Bradley Jennings
    Saunders Owen Hopkins Nicholson Grant Holland Newman Kennedy Sharp Fletcher Bates Lowe Naylor
    Doyle Ryan O'Brien O'Neill O'Connor McDonald McCarthy MacLeod Fitzgerald Nowak Kowalski
    Wisniewski Wojcik Kaminski Lewandowski Zielinski Szymanski Nguyen Tran Chen Wang Li Zhang Liu
    Yilmaz Kaya Demir Okafor Okonkwo Adeyemi Mensah Boateng Asante Osei Ibrahim Mohamed Abdi
    Hassan Farah Sharma Gupta Kumar Shah Mistry Chauhan Joshi Desai Mehta Choudhury Miah Uddin
    Islam Akhtar Iqbal Hussein Malik Qureshi Santos Silva Pereira Costa Ferreira Rossi Russo
    Murray Duncan Ferguson Hamilton-Smith Lloyd-Jones Bowes-Lyon Price-Davies Ward-Thomas Brooks
    Pike Frost Thornton Yates Steele Booth Goodwin Hale Lamb Parsons Kirby Sykes Haworth Ingram
    Rhodes Sanderson Tyler Whitehead Wilde Norris Preece Abbott Blake Curtis Dunn Ellison Finch
    Gough Hammond Hayward Holt Howe Jarvis Kemp Lynch Marsh Mellor Moss Nash Oakley Page Peck
    Potter Quinn Randall Reeves Rees Riley Roe Sims Slater Swift Talbot Tucker Vaughan Wade Warren
    Weston Whitfield Wyatt Zamora Ó'Súilleabháin
"""
)

# Served postcode districts of the default directory (Norfolk & Waveney), and a few that are not.
SERVED_DISTRICTS = _words(
    """
    NR1 NR2 NR3 NR4 NR5 NR6 NR7 NR8 NR13 NR14 NR15 NR16 NR9 NR10 NR11 NR12 NR21 NR22 NR23 NR24
    NR25 NR26 NR27 NR28 NR29 NR30 NR31 NR32 NR33 NR34 NR35 PE14 PE30 PE31 PE32 PE33 PE34 PE35 PE36
    PE37 PE38 NR17 NR18 NR19 NR20 IP20 IP21 IP22 IP24 IP25 IP26
"""
)
OUT_OF_AREA_DISTRICTS = ("CB1", "IP1", "IP4", "PE1", "LN1", "CO1", "SE1", "M1")
# Letters allowed in the inward code (never C, I, K, M, O or V).
INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"

# NHS numbers: stems 999 000 000 - 999 999 999 (about 909,000 valid numbers). The data loader
# takes stems from the bottom of the range; intake load bodies from the top, so the two never
# collide even when intake runs against a loaded database.
NHS_STEMS = 1_000_000
LOADER_NHS_STEMS = range(0, 880_000)
INTAKE_NHS_STEMS = range(880_000, NHS_STEMS)
_NHS_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)

NEEDS = _words(
    """
    anxiety low_mood self_harm eating sleep anger bereavement school_refusal relationships trauma
    ocd adhd_query autism_query substance_use bullying gender_identity body_image panic
    social_anxiety family_conflict exam_stress
"""
)
REASONS = (
    "Struggling at school since the spring; not sleeping and stopped seeing friends.",
    "Parent worried about low mood and withdrawal over the last two months.",
    "Panic attacks on the way to school, now missing most mornings.",
    "GP review: low mood, poor appetite and weight loss over the term.",
    "Self-harm disclosed to the school nurse; wounds superficial, seen by GP.",
    "Bereavement (grandparent) six months ago, increasingly tearful and angry.",
    "Anger at home and fights at school; family asking for support and advice.",
    "Worries about eating and body image; restricting meals for several weeks.",
    "Intrusive thoughts and checking rituals taking hours each day.",
    "Bullied online, says they do not want to be here any more; no plan given.",
    "Referred by social worker: placement change and sleep problems.",
    "Leaving CAMHS at 18, needs ongoing support with anxiety in college.",
    "Drop-in: wants someone to talk to about stress and exams.",
    "Young adult at university, low mood and not attending lectures.",
    "Parent asking for advice about a possible ADHD assessment route.",
)
ORGANISATIONS = {
    "gp": [
        ("The Market Surgery", "D82001"),
        ("Lakeside Health Centre", "D82015"),
        ("Bridge Road Practice", "D82044"),
        ("Riverside Medical Centre", "D82078"),
    ],
    "camhs": [("Norfolk CAMHS North", "RMY01"), ("Waveney CAMHS", "RMY22")],
    "school": [("City Academy", "SCH1041"), ("Broadland High School", "SCH2210")],
    "social_care": [("Children's Services East", "CSE001")],
}
# The referring system the intake bench's API key is issued to: a system may send only its own
# organisation's ODS code, so the intake bodies' system referrals all come from it.
INTAKE_SYSTEM = ORGANISATIONS["gp"][0]
DROP_IN_SITES = (
    "cb-norwich",
    "cb-north-walsham",
    "cb-great-yarmouth",
    "cb-lowestoft",
    "cb-kings-lynn",
    "cb-thetford",
    "oss-norwich",
    "oss-cromer",
    "oss-great-yarmouth",
    "oss-kings-lynn",
    "oss-thetford",
)


def nhs_check_digit(stem: str) -> int | None:
    """The Modulus 11 check digit for a 9-digit stem, or None when the stem has none (10)."""
    total = sum(int(d) * w for d, w in zip(stem, _NHS_WEIGHTS, strict=True))
    return _check_from_total(total)


def _check_from_total(total: int) -> int | None:
    check = 11 - total % 11
    if check == 11:
        return 0
    return None if check == 10 else check


def nhs_numbers(stems: range) -> Iterator[str]:
    """Valid 999-range NHS numbers, one per stem that has a check digit, in stem order."""
    prefix_total = 9 * 10 + 9 * 9 + 9 * 8  # the leading "999"
    for index in stems:
        total = prefix_total
        rest = index
        for weight in (2, 3, 4, 5, 6, 7):  # last digit first
            total += (rest % 10) * weight
            rest //= 10
        check = _check_from_total(total)
        if check is not None:
            yield f"999{index:06d}{check}"


def postcode(rng: random.Random, *, out_of_area_fraction: float = 0.03) -> str:
    """A well-shaped postcode, almost always in a served district."""
    districts = OUT_OF_AREA_DISTRICTS if rng.random() < out_of_area_fraction else SERVED_DISTRICTS
    return (
        f"{rng.choice(districts)} {rng.randrange(10)}"
        f"{rng.choice(INWARD_LETTERS)}{rng.choice(INWARD_LETTERS)}"
    )


# Referrals peak in the teenage years: weights by age 0..25.
_AGE_WEIGHTS = (
    1,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    11,
    13,
    15,
    17,
    18,
    18,
    17,
    15,
    11,
    9,
    8,
    7,
    6,
    5,
    4,
    3,
)


def date_of_birth(rng: random.Random, on: date, *, max_age: int = 25) -> date:
    """A date of birth giving an age between 0 and ``max_age`` on ``on``."""
    age = rng.choices(range(max_age + 1), weights=_AGE_WEIGHTS[: max_age + 1])[0]
    return on - timedelta(days=age * 365 + rng.randrange(365) + 1)


def person(rng: random.Random, on: date, nhs_number: str | None) -> dict[str, Any]:
    """A person as the intake body's ``person`` object."""
    given = rng.choice(GIVEN_NAMES)
    family = rng.choice(FAMILY_NAMES)
    has_postcode = rng.random() < 0.95
    return {
        "nhs_number": nhs_number,
        "given_name": given,
        "family_name": family,
        "date_of_birth": date_of_birth(rng, on).isoformat(),
        "postcode": postcode(rng) if has_postcode else None,
        "phone": f"07{rng.randrange(10**9):09d}" if rng.random() < 0.7 else None,
        "email": (
            f"{given.lower()}.{rng.randrange(10_000)}@example.org" if rng.random() < 0.3 else None
        ),
        "send": rng.random() < 0.08,
        "looked_after": rng.random() < 0.03,
    }


def _risk(rng: random.Random) -> dict[str, Any]:
    roll = rng.random()
    risk: dict[str, Any] = {
        "immediate_danger": False,
        "suicidal": "none",
        "self_harm": "none",
        "harm_to_others": "none",
        "safeguarding_concern": rng.random() < 0.06,
        "supported": rng.choice([True, True, True, False, None]),
    }
    if roll < 0.005:
        risk["immediate_danger"] = True
    elif roll < 0.025:
        risk[rng.choice(["suicidal", "self_harm", "harm_to_others"])] = "intent"
        if risk.get("self_harm") == "intent":
            risk["self_harm"] = "current"
        if risk.get("harm_to_others") == "intent":
            risk["harm_to_others"] = "imminent"
    elif roll < 0.085:
        risk["suicidal"] = rng.choice(["plan", "thoughts"])
        risk["self_harm"] = rng.choice(["recent", "past", "none"])
    elif roll < 0.25:
        risk["suicidal"] = rng.choice(["thoughts", "none"])
        risk["self_harm"] = rng.choice(["past", "recent", "none"])
    return risk


def referral_body(
    rng: random.Random, who: dict[str, Any], channel: str, on: date
) -> dict[str, Any]:
    """A valid ``POST /v1/referrals`` body for ``who`` arriving by ``channel``."""
    age = (on - date.fromisoformat(who["date_of_birth"])).days // 365
    if channel == "system":
        referrer_type = rng.choice(["gp", "gp", "gp", "camhs", "school", "social_care"])
        organisation, ods = rng.choice(ORGANISATIONS[referrer_type])
        referrer: dict[str, Any] = {
            "type": referrer_type,
            "name": f"Dr {rng.choice(FAMILY_NAMES)}",
            "organisation": organisation,
            "ods_code": ods,
        }
    elif channel == "drop_in":
        referrer = {"type": rng.choice(["self", "self", "parent_carer"])}
    else:
        referrer_type = rng.choice(
            ["parent_carer", "parent_carer", "self", "school", "other_professional"]
        )
        referrer = {"type": referrer_type, "name": f"{rng.choice(GIVEN_NAMES)} Caller"}
        if rng.random() < 0.6:
            referrer["phone"] = f"01603 {rng.randrange(10**6):06d}"
    camhs_status = rng.choices(["never", "open", "discharged", "unknown"], [70, 8, 12, 10])[0]
    gillick = None
    if age < 16 and referrer["type"] == "self" and rng.random() < 0.5:
        gillick = {
            "assessed_by": f"{rng.choice(GIVEN_NAMES)} {rng.choice(FAMILY_NAMES)}",
            "assessed_on": on.isoformat(),
            "outcome": "competent",
        }
    body: dict[str, Any] = {
        "channel": channel,
        "referrer": referrer,
        "person": who,
        "camhs": {
            "status": camhs_status,
            "transition_planned": camhs_status == "open" and age >= 17 and rng.random() < 0.5,
        },
        "amhs_threshold": (
            rng.choices(["not_met", "unknown", "met"], [70, 25, 5])[0] if age >= 18 else "unknown"
        ),
        "request": "advice" if rng.random() < 0.08 else "help",
        "needs": rng.sample(NEEDS, rng.randint(1, 3)),
        "reason": rng.choice(REASONS),
        "risk": _risk(rng),
        "preferences": {
            "setting": rng.choices([None, "one_stop_shop", "community_base"], [70, 20, 10])[0]
        },
        "consent": {
            "to_referral": True,
            "to_share": rng.random() < 0.9,
            "parent_carer_aware": None if age >= 16 else rng.choice([True, True, False]),
            "gillick": gillick,
        },
    }
    if channel == "drop_in":
        body["site_id"] = rng.choice(DROP_IN_SITES)
    return body


def intake_channel(rng: random.Random) -> str:
    """The intake mix: access-line calls, GP/CAMHS/school systems posting, walk-ins."""
    return rng.choices(["phone", "system", "drop_in"], [45, 40, 15])[0]


def intake_bodies(count: int, *, seed: int, on: date) -> list[dict[str, Any]]:
    """``count`` referral bodies for the intake load test.

    Mostly new people (unique NHS numbers from the top of the 999 range, or none for some calls
    and walk-ins); about 8% are a further referral for someone earlier in the list (same NHS
    number and details) and 2% the same person without an NHS number (matched on name, date of
    birth and postcode), so person matching and case joining are exercised. System referrals
    come from one GP practice's system (``INTAKE_SYSTEM``, the bench's API key).
    """
    rng = random.Random(seed)
    numbers = nhs_numbers(INTAKE_NHS_STEMS)
    people: list[dict[str, Any]] = []
    bodies = []
    for _ in range(count):
        channel = intake_channel(rng)
        roll = rng.random()
        if people and roll < 0.08:
            who = dict(rng.choice(people))
        elif people and roll < 0.10:
            who = dict(rng.choice(people), nhs_number=None)
        else:
            with_nhs = {"system": 0.98, "phone": 0.6, "drop_in": 0.3}[channel]
            who = person(rng, on, next(numbers) if rng.random() < with_nhs else None)
            if who["postcode"] is None:
                who["postcode"] = postcode(rng)
            people.append(who)
        body = referral_body(rng, who, channel, on)
        if channel == "system":
            organisation, ods_code = INTAKE_SYSTEM
            body["referrer"].update(type="gp", organisation=organisation, ods_code=ods_code)
        bodies.append(body)
    return bodies
