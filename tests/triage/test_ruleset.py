"""Loading, versioning and validating rulesets; a deployment's own directory end to end."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.triage import (
    DEFAULT_RULESET_PATH,
    Channel,
    EligibilityOutcome,
    ReferralFacts,
    ReferrerType,
    RiskAnswers,
    RouteKind,
    RulesetError,
    SelfHarm,
    SettingPreference,
    UrgencyCode,
    evaluate,
    load_ruleset,
    ruleset_from_content,
)


def default_content() -> dict[str, Any]:
    content = yaml.safe_load(DEFAULT_RULESET_PATH.read_text(encoding="utf-8"))
    assert isinstance(content, dict)
    return content


def test_default_loads_with_the_directory() -> None:
    ruleset = load_ruleset()

    assert ruleset.label == "norfolk-waveney-2026.1"
    assert ruleset.version.startswith("norfolk-waveney-2026.1+")
    assert len(ruleset.version.split("+")[1]) == 12
    assert {q.id for q in ruleset.queues} >= {
        "crisis", "duty", "looked-after", "access-hub",
        "cb-norwich", "cb-north-walsham", "cb-great-yarmouth", "cb-lowestoft", "cb-kings-lynn",
        "cb-thetford", "oss-norwich", "oss-cromer", "oss-great-yarmouth", "oss-kings-lynn",
        "oss-thetford",
    }  # fmt: skip
    crisis = ruleset.queue("crisis")
    assert crisis is not None
    assert crisis.open_24_7
    assert crisis.kind == "crisis"
    assert ruleset.queue("nope") is None
    waveney = ruleset.locality_for_district("nr32")
    assert waveney is not None
    assert waveney.one_stop_shop_queue_id == "oss-great-yarmouth"
    assert ruleset.locality_for_district("CB1") is None
    assert ruleset.content == default_content()


def test_default_path_is_used_when_none_given() -> None:
    assert load_ruleset(None).version == load_ruleset(DEFAULT_RULESET_PATH).version


def test_version_is_stable_across_loads_and_layout(tmp_path: Path) -> None:
    reformatted = tmp_path / "reformatted.yaml"
    reformatted.write_text(
        "# comments and layout do not change the version\n"
        + yaml.safe_dump(default_content(), sort_keys=False, width=60),
        encoding="utf-8",
    )

    assert load_ruleset().version == load_ruleset().version == load_ruleset(reformatted).version


def test_version_changes_when_content_changes() -> None:
    content = default_content()
    content["urgency"]["windows"]["E"]["respond_within_hours"] = 336

    changed = ruleset_from_content(content)

    assert changed.label == load_ruleset().label
    assert changed.version != load_ruleset().version


def test_content_is_a_copy_the_caller_cannot_change() -> None:
    content = default_content()
    ruleset = ruleset_from_content(content)

    content["label"] = "changed"

    assert ruleset.content["label"] == "norfolk-waveney-2026.1"


Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def mutate(content: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = content
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _delete(path: str) -> Mutation:
    def mutate(content: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = content
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        del node[last]

    return mutate


def _append(path: str, value: Any) -> Mutation:
    def mutate(content: dict[str, Any]) -> None:
        node: Any = content
        for part in path.split("."):
            node = node[int(part)] if isinstance(node, list) else node[part]
        node.append(value)

    return mutate


INVALID = [
    # id, mutation, expected text in the error (the bad key path first)
    pytest.param(_set("urgency.windows.B.respond_within_hours", "four"),
                 "urgency.windows.B.respond_within_hours: Input should be a valid number",
                 id="bad-window-type"),
    pytest.param(_set("urgency.windows.B.respond_within_hours", -1),
                 "urgency.windows.B.respond_within_hours: Input should be greater than or equal",
                 id="negative-window"),
    pytest.param(_set("localities.0.community_base_queue_id", "cb-norwhich"),
                 "localities.0.community_base_queue_id: unknown queue id 'cb-norwhich'",
                 id="unknown-queue-reference"),
    pytest.param(_set("localities.3.one_stop_shop_queue_id", "cb-lowestoft"),
                 "localities.3.one_stop_shop_queue_id: queue 'cb-lowestoft' is a community_base",
                 id="queue-of-the-wrong-kind"),
    pytest.param(_set("routing.duty_queue_id", "crisis"),
                 "routing.duty_queue_id: queue 'crisis' is a crisis queue, not a duty queue",
                 id="routing-queue-of-the-wrong-kind"),
    pytest.param(_append("localities.1.postcode_districts", "nr1"),
                 "localities.1.postcode_districts.12: NR1 is already in locality 'norwich'",
                 id="duplicate-district"),
    pytest.param(_append("localities.0.postcode_districts", "N R1"),
                 "localities.0.postcode_districts.12: 'N R1' is not a UK postcode district",
                 id="malformed-district"),
    pytest.param(_delete("urgency.windows.D"),
                 "urgency.windows.D: missing", id="missing-urgency-window"),
    pytest.param(_delete("urgency.triggers.G"),
                 "urgency.triggers.G: missing", id="missing-urgency-trigger"),
    pytest.param(_delete("thrive_grouping.F"),
                 "thrive_grouping.F: missing", id="missing-thrive-code"),
    pytest.param(_set("urgency.evaluation_order", ["A", "B", "C", "F", "D", "E"]),
                 "urgency.evaluation_order: must list each code A-G exactly once",
                 id="evaluation-order-missing-G"),
    pytest.param(_set("urgency.widows", {}),
                 "urgency.widows: Extra inputs are not permitted", id="typo-unknown-key"),
    pytest.param(_set("queues.0.open_24_7s", True),
                 "queues.0.open_24_7s: Extra inputs are not permitted", id="typo-in-a-queue"),
    pytest.param(_set("urgency.triggers.B.0", {"field": "suicidal", "in": ["intnet"]}),
                 "urgency.triggers.B.0.in: 'intnet' is not a suicidal answer",
                 id="trigger-value-typo"),
    pytest.param(_set("urgency.triggers.A.0", {"field": "immediate_danger", "in": ["yes"]}),
                 "urgency.triggers.A.0", id="trigger-wrong-clause-for-yes-no"),
    pytest.param(_set("urgency.triggers.A.0", {"field": "mood", "is": True}),
                 "urgency.triggers.A.0.field: Input should be", id="trigger-unknown-field"),
    pytest.param(_append("urgency.triggers.B", {"fallback": True}),
                 "urgency.triggers.B.3.fallback: only the last code", id="fallback-not-last"),
    pytest.param(_set("urgency.triggers.E", [{"request_in": ["help"]}]),
                 "urgency.triggers.E: the last code in evaluation_order needs",
                 id="no-fallback"),
    pytest.param(_set("urgency.triggers.C.2.supported_in", ["no"]),
                 "urgency.triggers.C.2.supported_in: 'no' is not one of", id="supported-not-bool"),
    pytest.param(_append("routing.order", "SEND_TO_MARS"),
                 "routing.order.10: Input should be", id="unknown-routing-step"),
    pytest.param(_set("routing.order", ["CRISIS_URGENCY", "COMMUNITY_BASE"]),
                 "routing.order: must include NO_LOCALITY_ACCESS_HUB",
                 id="routing-order-not-total"),
    pytest.param(_append("routing.order", "LOOKED_AFTER"),
                 "routing.order.10: LOOKED_AFTER is listed twice", id="routing-step-twice"),
    pytest.param(_set("routing.looked_after_queue_id", None),
                 "routing.looked_after_queue_id: required by routing step LOOKED_AFTER",
                 id="routing-step-without-its-queue"),
    pytest.param(_set("queues.4.locality_id", "norwhich"),
                 "queues.4.locality_id: unknown locality 'norwhich'", id="queue-unknown-locality"),
    pytest.param(_set("queues.1.id", "crisis"),
                 "queues.1.id: duplicate queue id 'crisis'", id="duplicate-queue"),
    pytest.param(_set("queues.0.kind", "signpost"),
                 "queues.0.kind: signpost is an outcome without a queue", id="signpost-queue"),
    pytest.param(_set("eligibility.max_age_years", "25"),
                 "eligibility.max_age_years: Input should be a valid integer", id="age-as-text"),
    pytest.param(_set("eligibility.adult_age_years", 30),
                 "eligibility: need transition_min_age_years < adult_age_years <= max_age_years",
                 id="age-bounds-out-of-order"),
    pytest.param(_set("version", "1"),
                 "version: computed when the ruleset loads", id="version-is-computed"),
    pytest.param(_delete("localities"), "localities: Field required", id="no-directory"),
]  # fmt: skip


@pytest.mark.parametrize(("mutate", "message"), INVALID)
def test_invalid_ruleset_names_the_bad_key(mutate: Mutation, message: str) -> None:
    content = default_content()
    mutate(content)

    with pytest.raises(RulesetError) as raised:
        ruleset_from_content(content)

    assert message in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_duplicate_yaml_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    text = DEFAULT_RULESET_PATH.read_text(encoding="utf-8")
    window = "    B: {respond_within_hours: 4}\n"
    path.write_text(text.replace(window, window + window.replace("4", "8")), encoding="utf-8")

    with pytest.raises(RulesetError, match="duplicate key 'B'"):
        load_ruleset(path)


def test_unreadable_and_non_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(RulesetError, match="cannot read"):
        load_ruleset(tmp_path / "missing.yaml")
    not_a_mapping = tmp_path / "list.yaml"
    not_a_mapping.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(RulesetError, match="mapping"):
        load_ruleset(not_a_mapping)
    broken = tmp_path / "broken.yaml"
    broken.write_text("label: [unclosed\n", encoding="utf-8")
    with pytest.raises(RulesetError, match="not valid YAML"):
        load_ruleset(broken)


DEPLOYMENT_DIRECTORY = """
queues:
  - {id: crisis, name: Crisis line, kind: crisis, open_24_7: true}
  - {id: duty, name: Duty desk, kind: duty}
  - {id: lac, name: Children in care team, kind: looked_after}
  - {id: hub, name: Front Door Hub, kind: access_hub}
  - {id: cb-southend, name: Southend Community Base, kind: community_base, locality_id: southend}
  - {id: oss-southend, name: Southend One Stop Shop, kind: one_stop_shop, locality_id: southend}
  - {id: cb-thurrock, name: Grays Community Base, kind: community_base, locality_id: thurrock}
localities:
  - id: southend
    name: Southend-on-Sea
    postcode_districts: [SS0, SS1, SS2, SS3, SS9]
    community_base_queue_id: cb-southend
    one_stop_shop_queue_id: oss-southend
  - id: thurrock
    name: Thurrock
    postcode_districts: [RM16, RM17, RM18, RM20, SS17]
    community_base_queue_id: cb-thurrock
    one_stop_shop_queue_id: oss-southend
"""


def test_a_deployment_directory_works_end_to_end(tmp_path: Path) -> None:
    content = default_content()
    content.update(yaml.safe_load(DEPLOYMENT_DIRECTORY))
    content["label"] = "southend-essex-thurrock-2026.1"
    content["routing"].update(looked_after_queue_id="lac", access_hub_queue_id="hub")
    content["eligibility"]["send_transition_max_age_years"] = 24
    path = tmp_path / "set.yaml"
    path.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")

    ruleset = load_ruleset(path)

    def refer(**overrides: Any) -> ReferralFacts:
        values: dict[str, Any] = {
            "received_at": datetime(2026, 11, 22, 9, tzinfo=UTC),
            "channel": Channel.WEB,
            "referrer_type": ReferrerType.SELF,
            "date_of_birth": date(2010, 5, 5),
            "postcode": "ss1 2aa",
        }
        return ReferralFacts(**{**values, **overrides})

    assert ruleset.version.startswith("southend-essex-thurrock-2026.1+")
    southend = evaluate(refer(), ruleset)
    assert (southend.route.queue_id, southend.route.queue_name) == (
        "cb-southend",
        "Southend Community Base",
    )
    assert southend.locality_id == "southend"
    assert southend.ruleset_version == ruleset.version
    grays = evaluate(refer(postcode="RM17 6AA", setting_preference=SettingPreference.ONE_STOP_SHOP),
                     ruleset)  # fmt: skip
    assert grays.route.queue_id == "oss-southend"
    norwich = evaluate(refer(postcode="NR1 3AB"), ruleset)
    assert norwich.eligibility.outcome == EligibilityOutcome.INELIGIBLE
    assert norwich.eligibility.reasons[0].rule == "OUT_OF_AREA"
    assert norwich.route.kind == RouteKind.SIGNPOST
    no_postcode = evaluate(refer(postcode=None), ruleset)
    assert no_postcode.route.queue_id == "hub"
    drop_in = evaluate(refer(channel=Channel.DROP_IN, site_id="cb-thurrock"), ruleset)
    assert drop_in.route.queue_id == "cb-thurrock"


def test_a_deployment_can_widen_a_trigger() -> None:
    content = default_content()
    content["urgency"]["triggers"]["C"][2]["supported_in"] = [False, None]
    widened = ruleset_from_content(content)
    facts = ReferralFacts(
        received_at=datetime(2026, 11, 22, 9, tzinfo=UTC),
        channel=Channel.PHONE,
        referrer_type=ReferrerType.GP,
        date_of_birth=date(2010, 5, 5),
        postcode="NR1 3AB",
        risk=RiskAnswers(self_harm=SelfHarm.RECENT, supported=None),
    )

    assert evaluate(facts, load_ruleset()).urgency.code == UrgencyCode.D
    assert evaluate(facts, widened).urgency.code == UrgencyCode.C
