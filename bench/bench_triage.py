"""Benchmark: triage decisions per second on one core, with same-run baselines for context.

    python bench/bench_triage.py [--n 200000] [--repeats 5] [--seed 2026]
    python bench/bench_triage.py --smoke        # 2,000 facts, one pass: a second

Builds a realistic mix of referral facts (ages 0-30 with ~10% unknown, mostly low risk,
postcodes across the default directory in assorted spellings plus out-of-area and unusable ones,
every channel), then times ``evaluate`` over all of them ``--repeats`` times and reports the
median. Baselines from the same run: the cost of an empty Python function call over the same
list (the floor any per-referral code pays) and of constructing the facts themselves.
Prints a markdown row for bench/RESULTS.md. Exits 1 below the target (not with ``--smoke``,
whose figure means nothing).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

# Runnable from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.triage import (
    AmhsThreshold,
    CamhsStatus,
    Channel,
    HarmToOthers,
    ReferralFacts,
    ReferrerType,
    RequestKind,
    RiskAnswers,
    Ruleset,
    SelfHarm,
    SettingPreference,
    Suicidal,
    evaluate,
    load_ruleset,
)

TARGET_DECISIONS_PER_SECOND = 20_000
DAYS_PER_YEAR = 365.25
MAX_AGE_GENERATED_YEARS = 30
SHARE_WITHOUT_DATE_OF_BIRTH = 0.10
LONDON = ZoneInfo("Europe/London")

# (outward code, share) across the default directory, plus out-of-area districts.
DIRECTORY_DISTRICTS = [
    "NR1", "NR2", "NR3", "NR4", "NR5", "NR6", "NR7", "NR8", "NR13", "NR14", "NR15", "NR16",
    "NR9", "NR10", "NR11", "NR12", "NR21", "NR25", "NR26", "NR27", "NR28", "NR29", "NR30",
    "NR31", "NR32", "NR33", "NR34", "NR35", "PE14", "PE30", "PE31", "PE33", "PE38", "NR17",
    "NR18", "NR19", "NR20", "IP20", "IP22", "IP24", "IP25", "IP26",
]  # fmt: skip
OUT_OF_AREA_DISTRICTS = ["CB1", "IP1", "IP4", "PE1", "SW1A", "M1", "LS6", "CO4"]
UNUSABLE_POSTCODES = ["NR1 3A", "N/A", "unknown", "12345", "NR 1AB", ""]
SITE_IDS = [
    "cb-norwich", "cb-north-walsham", "cb-great-yarmouth", "cb-lowestoft", "cb-kings-lynn",
    "cb-thetford", "oss-norwich", "oss-cromer", "oss-great-yarmouth", "oss-kings-lynn",
    "oss-thetford", "pop-up-library",  # the last is unknown: routing falls through
]  # fmt: skip


def _postcode(rng: random.Random) -> str | None:
    roll = rng.random()
    if roll < 0.05:
        return None
    if roll < 0.10:
        return rng.choice(UNUSABLE_POSTCODES)
    district = rng.choice(OUT_OF_AREA_DISTRICTS if roll < 0.20 else DIRECTORY_DISTRICTS)
    if rng.random() < 0.10:
        return district.lower()  # a bare outward code
    inward = (
        f"{rng.randint(0, 9)}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}{rng.choice('ABDEHJLNPRSTUW')}"
    )
    spelling = rng.random()
    if spelling < 0.6:
        return f"{district} {inward}"
    if spelling < 0.8:
        return f"{district}{inward}".lower()
    return f" {district.capitalize()}  {inward} "


def _risk(rng: random.Random) -> RiskAnswers:
    # Mostly low risk, as intake is: ~60% none, then thinning towards the emergencies.
    level = rng.random()
    suicidal, self_harm, others, danger = Suicidal.NONE, SelfHarm.NONE, HarmToOthers.NONE, False
    if level < 0.02:
        danger = True
    elif level < 0.07:
        suicidal, self_harm = rng.choice(
            [(Suicidal.INTENT, SelfHarm.NONE), (Suicidal.PLAN, SelfHarm.CURRENT)]
        )
    elif level < 0.17:
        suicidal = rng.choice([Suicidal.PLAN, Suicidal.THOUGHTS])
        self_harm = rng.choice([SelfHarm.RECENT, SelfHarm.PAST])
    elif level < 0.40:
        suicidal = rng.choice([Suicidal.THOUGHTS, Suicidal.NONE])
        self_harm = rng.choice([SelfHarm.NONE, SelfHarm.PAST, SelfHarm.RECENT])
        others = rng.choice([HarmToOthers.NONE, HarmToOthers.NONE, HarmToOthers.THOUGHTS])
    return RiskAnswers(
        immediate_danger=danger,
        suicidal=suicidal,
        self_harm=self_harm,
        harm_to_others=others,
        safeguarding_concern=rng.random() < 0.10,
        supported=rng.choice([True, True, None, False]),
    )


def build_facts(n: int, seed: int) -> list[ReferralFacts]:
    """``n`` referral facts in a realistic mix, reproducible from ``seed``."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    channels = [Channel.PHONE] * 4 + [Channel.WEB] * 3 + [Channel.SYSTEM] * 2 + [Channel.DROP_IN]
    facts = []
    for _ in range(n):
        received_at = start + timedelta(seconds=rng.randrange(365 * 24 * 3600))
        if rng.random() < 0.2:
            received_at = received_at.astimezone(LONDON)
        date_of_birth: date | None = None
        if rng.random() >= SHARE_WITHOUT_DATE_OF_BIRTH:
            days_old = rng.randrange(int(MAX_AGE_GENERATED_YEARS * DAYS_PER_YEAR))
            date_of_birth = received_at.date() - timedelta(days=days_old)
        channel = rng.choice(channels)
        facts.append(
            ReferralFacts(
                received_at=received_at,
                channel=channel,
                referrer_type=rng.choice(list(ReferrerType)),
                date_of_birth=date_of_birth,
                postcode=_postcode(rng),
                site_id=rng.choice(SITE_IDS) if channel == Channel.DROP_IN else None,
                camhs_status=rng.choice(
                    [CamhsStatus.NEVER] * 5
                    + [CamhsStatus.OPEN, CamhsStatus.DISCHARGED] * 2
                    + [CamhsStatus.UNKNOWN]
                ),
                camhs_transition_planned=rng.random() < 0.3,
                amhs_threshold=rng.choice(list(AmhsThreshold)),
                send=rng.random() < 0.10,
                looked_after=rng.random() < 0.05,
                request=RequestKind.ADVICE if rng.random() < 0.10 else RequestKind.HELP,
                risk=_risk(rng),
                setting_preference=rng.choice([None, None, *SettingPreference]),
            )
        )
    return facts


def _do_nothing(facts: ReferralFacts, ruleset: Ruleset) -> object:
    return facts.channel


def _time_per_item(
    call: Callable[[ReferralFacts, Ruleset], object],
    facts: Sequence[ReferralFacts],
    ruleset: Ruleset,
) -> float:
    started = time.perf_counter()
    for item in facts:
        call(item, ruleset)
    return (time.perf_counter() - started) / len(facts)


def _pin_to_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to core {core}"
    return "not pinned (no sched_setaffinity)"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print a summary and a markdown row. Exit 1 if below target."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=200_000, help="referrals per repeat")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes (median reported)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="2,000 facts, one pass: every step in a second; exit 1 only if a step fails",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.n, args.repeats = 2_000, 1

    pinned = _pin_to_one_core()
    ruleset = load_ruleset()

    started = time.perf_counter()
    facts = build_facts(args.n, args.seed)
    construct_seconds_per_item = (time.perf_counter() - started) / args.n

    for item in facts[: min(len(facts), 10_000)]:  # warm-up: caches, branch predictors
        evaluate(item, ruleset)

    call_loop = statistics.median(
        _time_per_item(_do_nothing, facts, ruleset) for _ in range(args.repeats)
    )
    per_decision = [_time_per_item(evaluate, facts, ruleset) for _ in range(args.repeats)]
    median_per_decision = statistics.median(per_decision)
    decisions_per_second = 1 / median_per_decision

    mix: Counter[str] = Counter()
    urgencies: Counter[str] = Counter()
    for item in facts[:20_000]:
        decision = evaluate(item, ruleset)
        urgencies[decision.urgency.code.value] += 1
        mix[decision.route.kind.value] += 1
    mix.update(urgencies)

    python = platform.python_version()
    machine = f"{_cpu_model()}, nproc {os.cpu_count()}"
    print(f"ruleset {ruleset.version}; {args.n} referrals x {args.repeats} repeats; {pinned}")
    print(f"machine: {machine}; Python {python} ({platform.python_implementation()})")
    print("decisions/s per repeat: " + ", ".join(f"{1 / seconds:,.0f}" for seconds in per_decision))
    print(f"mix (first 20,000): {dict(sorted(mix.items()))}")
    print()
    print(
        "| date | machine | python | command | median decisions/s | per decision "
        "| baseline: empty call loop | baseline: constructing the facts |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {date.today().isoformat()} | {machine} | {python} "
        f"| `python bench/bench_triage.py --n {args.n} --repeats {args.repeats}` "
        f"| **{decisions_per_second:,.0f}** | {median_per_decision * 1e6:.1f} µs "
        f"| {call_loop * 1e9:.0f} ns/item | {construct_seconds_per_item * 1e6:.1f} µs/item |"
    )
    if args.smoke:
        # Every fact decided, and a realistic mix: the emergencies and the routine both seen.
        decided = sum(urgencies.values()) == min(args.n, 20_000)
        return 0 if decided and {"A", "E"} <= set(urgencies) else 1
    return 0 if decisions_per_second >= TARGET_DECISIONS_PER_SECOND else 1


if __name__ == "__main__":
    raise SystemExit(main())
