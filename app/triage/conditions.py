"""The small condition vocabulary urgency triggers are written in, and its compiler.

A trigger list in the ruleset is true when ANY of its conditions holds; a condition is true when
EVERY clause it states holds. The clauses:

``field`` + ``in``        a graded risk answer is one of the listed values
                          (``{field: suicidal, in: [intent]}``)
``field`` + ``is``        a yes/no risk answer has this value
                          (``{field: immediate_danger, is: true}``)
``supported_in``          "capable support around them" is one of true / false / null (unknown)
``eligibility_in``        the eligibility outcome already decided is one of these
``request_in``            the request kind (help / advice) is one of these
``fallback: true``        always true, alone; only the last code in the evaluation order may use it

Conditions are compiled once, when the ruleset loads, into plain closures so that evaluating a
referral does no parsing or pydantic work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from operator import attrgetter
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from app.triage.decision import EligibilityOutcome
from app.triage.facts import HarmToOthers, RequestKind, RiskAnswers, SelfHarm, Suicidal

InputValue = str | bool | None
"""What a fired rule records about an input: JSON-ready scalars only."""

Predicate = Callable[[RiskAnswers, EligibilityOutcome, RequestKind], bool]
InputReader = Callable[[RiskAnswers, EligibilityOutcome, RequestKind], InputValue]


class RiskField(StrEnum):
    """The risk answers a condition's ``field`` may name."""

    IMMEDIATE_DANGER = "immediate_danger"
    SUICIDAL = "suicidal"
    SELF_HARM = "self_harm"
    HARM_TO_OTHERS = "harm_to_others"
    SAFEGUARDING_CONCERN = "safeguarding_concern"


# Graded answers are matched with ``in``; yes/no answers with ``is``.
GRADED_RISK_FIELDS: dict[RiskField, type[StrEnum]] = {
    RiskField.SUICIDAL: Suicidal,
    RiskField.SELF_HARM: SelfHarm,
    RiskField.HARM_TO_OTHERS: HarmToOthers,
}
YES_NO_RISK_FIELDS = frozenset({RiskField.IMMEDIATE_DANGER, RiskField.SAFEGUARDING_CONCERN})

# Input keys a fired urgency rule reports, and how to read each from a referral. str() rather
# than .value: the same text from a StrEnum, several times faster on this hot path.
# A question not asked reads as None ("not asked"), never as its lowest answer.
INPUT_READERS: dict[str, InputReader] = {
    "immediate_danger": lambda r, e, q: r.immediate_danger,
    "suicidal": lambda r, e, q: None if r.suicidal is None else str(r.suicidal),
    "self_harm": lambda r, e, q: None if r.self_harm is None else str(r.self_harm),
    "harm_to_others": lambda r, e, q: None if r.harm_to_others is None else str(r.harm_to_others),
    "safeguarding_concern": lambda r, e, q: r.safeguarding_concern,
    "supported": lambda r, e, q: r.supported,
    "eligibility": lambda r, e, q: str(e),
    "request": lambda r, e, q: str(q),
}

# Plain-English phrases for input values, used to write a fired rule's reason.
INPUT_PHRASES: dict[str, dict[InputValue, str]] = {
    "immediate_danger": {
        True: "immediate danger reported",
        False: "no immediate danger",
        None: "immediate danger not asked",
    },
    "suicidal": {
        "none": "no suicidal thoughts",
        "thoughts": "suicidal thoughts",
        "plan": "a suicide plan",
        "intent": "suicidal intent",
        None: "suicidal thoughts not asked",
    },
    "self_harm": {
        "none": "no self-harm",
        "past": "past self-harm",
        "recent": "recent self-harm",
        "current": "current self-harm",
        None: "self-harm not asked",
    },
    "harm_to_others": {
        "none": "no thoughts of harming others",
        "thoughts": "thoughts of harming others",
        "threats": "threats to harm others",
        "imminent": "imminent harm to others",
        None: "harm to others not asked",
    },
    "safeguarding_concern": {
        True: "a safeguarding concern",
        False: "no safeguarding concern",
        None: "safeguarding not asked",
    },
    "supported": {
        True: "capable support around them",
        False: "no capable support around them",
        None: "support around them unknown",
    },
    "eligibility": {
        "eligible": "eligible",
        "ineligible": "ineligible for this service",
        "clinical_review": "eligibility needing clinical review",
    },
    "request": {"help": "help requested", "advice": "advice only requested"},
}


def describe_inputs(inputs: dict[str, Any]) -> str:
    """``{"self_harm": "recent", "supported": False}`` as "recent self-harm and no capable ..."."""
    return " and ".join(INPUT_PHRASES[key][value] for key, value in inputs.items())


class Condition(BaseModel):
    """One urgency trigger condition (see the module docstring for the vocabulary)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: RiskField | None = None
    in_: tuple[str, ...] | None = Field(default=None, alias="in", min_length=1)
    is_: bool | None = Field(default=None, alias="is", strict=True)
    supported_in: tuple[bool | None, ...] | None = Field(default=None, min_length=1)
    eligibility_in: tuple[EligibilityOutcome, ...] | None = Field(default=None, min_length=1)
    request_in: tuple[RequestKind, ...] | None = Field(default=None, min_length=1)
    fallback: Literal[True] | None = None

    @field_validator("supported_in", mode="before")
    @classmethod
    def _supported_values_are_yes_no_or_unknown(cls, value: Any) -> Any:
        # Lax bool parsing would read "no" or 0 as false; a ruleset should say false.
        if isinstance(value, list | tuple):
            for item in value:
                if item is not None and not isinstance(item, bool):
                    raise ValueError(f"{item!r} is not one of true, false, null (unknown)")
        return value

    @field_validator("in_")
    @classmethod
    def _values_belong_to_the_field(
        cls, value: tuple[str, ...] | None, info: ValidationInfo
    ) -> tuple[str, ...] | None:
        field = info.data.get("field")
        if value is None or field is None:
            return value
        answers = GRADED_RISK_FIELDS.get(field)
        if answers is None:
            raise ValueError(f"{field} is a yes/no answer: use `is: true` or `is: false`")
        allowed = [member.value for member in answers]
        for item in value:
            if item not in allowed:
                raise ValueError(f"{item!r} is not a {field} answer ({', '.join(allowed)})")
        return value

    @model_validator(mode="after")
    def _clauses_fit_together(self) -> Self:
        clauses = [
            name
            for name in ("field", "supported_in", "eligibility_in", "request_in", "fallback")
            if getattr(self, name) is not None
        ]
        if not clauses:
            raise ValueError("a condition needs at least one clause (field, supported_in, ...)")
        if self.fallback and clauses != ["fallback"]:
            raise ValueError("`fallback: true` stands alone: it already matches everything")
        if self.field is None and (self.in_ is not None or self.is_ is not None):
            raise ValueError("`in` and `is` need a `field` naming the risk answer")
        if self.field in YES_NO_RISK_FIELDS and (self.is_ is None or self.in_ is not None):
            raise ValueError(f"{self.field} is a yes/no answer: use `is: true` or `is: false`")
        if self.field in GRADED_RISK_FIELDS and (self.in_ is None or self.is_ is not None):
            raise ValueError(f"{self.field} is a graded answer: use `in: [...]`")
        return self

    def input_keys(self) -> tuple[str, ...]:
        """The inputs this condition reads, as fired-rule input keys."""
        keys: list[str] = []
        if self.field is not None:
            keys.append(self.field.value)
        if self.supported_in is not None:
            keys.append("supported")
        if self.eligibility_in is not None:
            keys.append("eligibility")
        if self.request_in is not None:
            keys.append("request")
        return tuple(keys)

    def compile(self) -> Predicate:
        """This condition as a closure over (risk answers, eligibility outcome, request kind)."""
        if self.fallback:
            return _always
        tests: list[Predicate] = []
        if self.field is not None:
            tests.append(_field_test(self.field, self.in_, self.is_))
        if self.supported_in is not None:
            supported = frozenset(self.supported_in)
            tests.append(lambda r, e, q: r.supported in supported)
        if self.eligibility_in is not None:
            outcomes = frozenset(self.eligibility_in)
            tests.append(lambda r, e, q: e in outcomes)
        if self.request_in is not None:
            requests = frozenset(self.request_in)
            tests.append(lambda r, e, q: q in requests)
        if len(tests) == 1:
            return tests[0]
        all_tests = tuple(tests)
        return lambda r, e, q: all(test(r, e, q) for test in all_tests)


def _always(risk: RiskAnswers, eligibility: EligibilityOutcome, request: RequestKind) -> bool:
    return True


# What a question not asked is read as by a trigger: its lowest answer. So a trigger can never
# make a referral with a question left out less urgent than the same referral answering "no"
# (tests/triage/test_properties.py), while the decision still records the answer as not asked.
_NOT_ASKED_READS_AS: dict[RiskField, str | bool] = {
    RiskField.IMMEDIATE_DANGER: False,
    RiskField.SUICIDAL: Suicidal.NONE,
    RiskField.SELF_HARM: SelfHarm.NONE,
    RiskField.HARM_TO_OTHERS: HarmToOthers.NONE,
    RiskField.SAFEGUARDING_CONCERN: False,
}


def _field_test(
    field: RiskField, values: tuple[str, ...] | None, expected: bool | None
) -> Predicate:
    read = attrgetter(field.value)
    baseline = _NOT_ASKED_READS_AS[field]
    if values is not None:
        # StrEnum members hash and compare as their string values, so a set of strings matches.
        allowed = frozenset(values)
        if baseline in allowed:
            return lambda r, e, q: (baseline if (v := read(r)) is None else v) in allowed
        return lambda r, e, q: read(r) in allowed
    if expected == baseline:
        return lambda r, e, q: (baseline if (v := read(r)) is None else v) == expected
    return lambda r, e, q: read(r) == expected


@dataclass(frozen=True, slots=True)
class CompiledCondition:
    """A condition ready to evaluate: its test and the inputs it reports when it fires."""

    test: Predicate
    readers: tuple[tuple[str, InputReader], ...]
    is_fallback: bool

    @classmethod
    def build(cls, condition: Condition, fallback_reads: tuple[str, ...] = ()) -> CompiledCondition:
        """Compile ``condition``; a fallback reports ``fallback_reads`` (what it fell through)."""
        keys = fallback_reads if condition.fallback else condition.input_keys()
        return cls(
            test=condition.compile(),
            readers=tuple((key, INPUT_READERS[key]) for key in keys),
            is_fallback=bool(condition.fallback),
        )

    def read_inputs(
        self, risk: RiskAnswers, eligibility: EligibilityOutcome, request: RequestKind
    ) -> dict[str, Any]:
        """The inputs this condition read, as JSON-ready values."""
        return {key: read(risk, eligibility, request) for key, read in self.readers}
