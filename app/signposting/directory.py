"""The signposting directory: services to point people to, shaped as Open Referral UK (HSDS 3).

A directory is configuration, versioned like the ruleset: a YAML file (the packaged default is
``app/rulesets/signposting.yaml``; ``FRONTDOOR_SIGNPOSTING_PATH`` overrides it) validated here
into frozen pydantic models. Its ``version`` is the ``label``, "+", and the first 12 hex digits of
the sha256 of the canonical JSON of the parsed content. Validation is strict (unknown keys are
errors) and every problem names its key path, because a typo would otherwise leave a young
person with nowhere to turn (docs/domain/signposting-and-messages.md).

Pure: no FastAPI, no SQLAlchemy, no I/O but reading the file.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from app.triage.postcodes import is_outward_code

DEFAULT_SIGNPOSTING_PATH = Path(__file__).parent.parent / "rulesets" / "signposting.yaml"

VERSION_HASH_HEX_DIGITS = 12
MAX_AGE_YEARS_ALLOWED = 150
"""Sanity bound on every age in the directory (catches a typo such as 255)."""

NATIONAL = "national"
"""The ``areas`` entry for a service open to anyone in England, wherever they live."""

# Stable HSDS ids (uuid) for each configured service id, so ORUK consumers can keep them.
ORUK_ID_NAMESPACE = uuid.UUID("3f0e7f52-5d0c-4a52-9b55-3c8e2f1d6a10")

_POSTCODE_AREA = re.compile(r"^[A-PR-UWYZ][A-HK-Y]?$")
_LOADER_COMPUTED_KEYS = ("version",)


class SignpostingError(ValueError):
    """A directory that cannot be used. The message names each bad key path."""

    def __init__(self, problems: str | list[str]) -> None:
        self.problems: list[str] = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


def _canonical_area(value: str) -> str:
    area = value.strip()
    if area.lower() == NATIONAL:
        return NATIONAL
    area = area.upper()
    if is_outward_code(area) or _POSTCODE_AREA.fullmatch(area):
        return area
    raise ValueError(
        f"{value!r} is not 'national', a postcode district (NR1) or a postcode area (NR)"
    )


def _https_url(value: str) -> str:
    if not value.startswith("https://"):
        raise ValueError("must be an https:// address")
    return value


Identifier = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]
Text = Annotated[str, Field(min_length=1, max_length=1000)]
AgeYears = Annotated[int, Field(strict=True, ge=0, le=MAX_AGE_YEARS_ALLOWED)]
Area = Annotated[str, AfterValidator(_canonical_area)]
HttpsUrl = Annotated[str, Field(max_length=500), AfterValidator(_https_url)]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]
Need = Annotated[str, Field(pattern=r"^[a-z0-9_ \-]+$", max_length=64)]
ClockTime = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OrganizationConfig(_Config):
    """HSDS ``organization``: who provides a service."""

    id: Identifier
    name: Text
    description: Text
    website: HttpsUrl | None = None
    email: Email | None = None


class PhoneConfig(_Config):
    """HSDS ``phone``: ``type`` from RFC 6350 (``voice``, or ``text`` for SMS)."""

    number: Annotated[str, Field(pattern=r"^[0-9][0-9 ]{1,19}$")]
    type: Literal["voice", "text"] = "voice"
    description: Text | None = None


class ScheduleConfig(_Config):
    """HSDS ``schedule``: opening times in words, optionally as an RFC 5545 weekly rule."""

    description: Text
    freq: Literal["WEEKLY", "MONTHLY"] | None = None
    byday: (
        Annotated[str, Field(pattern=r"^(MO|TU|WE|TH|FR|SA|SU)(,(MO|TU|WE|TH|FR|SA|SU))*$")] | None
    ) = None
    opens_at: ClockTime | None = None
    closes_at: ClockTime | None = None


class ServiceConfig(_Config):
    """HSDS ``service`` with its eligibility (ages in whole years, inclusive) and areas."""

    id: Identifier
    organization_id: Identifier
    name: Text
    description: Text
    url: HttpsUrl | None = None
    email: Email | None = None
    status: Literal["active", "inactive", "defunct", "temporarily closed"] = "active"
    minimum_age: AgeYears | None = None
    maximum_age: AgeYears | None = None
    areas: list[Area] = Field(min_length=1)
    needs: list[Need] = Field(default_factory=list)
    out_of_area_only: bool = Field(default=False, strict=True)
    """Offered only to someone whose postcode district the ruleset's directory does not serve."""
    illustrative: bool = Field(default=False, strict=True)
    """A made-up local entry: it may carry no phone number or email (nothing invented to call)."""
    phones: list[PhoneConfig] = Field(default_factory=list)
    schedules: list[ScheduleConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        problems = []
        if (
            self.minimum_age is not None
            and self.maximum_age is not None
            and self.minimum_age > self.maximum_age
        ):
            problems.append("minimum_age is above maximum_age")
        if NATIONAL in self.areas and len(self.areas) > 1:
            problems.append("areas: 'national' cannot be combined with local areas")
        if NATIONAL in self.areas and self.out_of_area_only:
            problems.append("out_of_area_only: a national service is not a home-area service")
        if self.illustrative and (self.phones or self.email):
            problems.append(
                "an illustrative entry must not carry phone numbers or an email (never invent "
                "contact details): give a url such as the NHS service finder"
            )
        if not (self.phones or self.url or self.email):
            problems.append("a service needs at least one way to reach it: phones, url or email")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def is_national(self) -> bool:
        return NATIONAL in self.areas

    @property
    def oruk_id(self) -> str:
        """The HSDS id (a uuid) of this service, stable for its configured id."""
        return str(uuid.uuid5(ORUK_ID_NAMESPACE, f"service:{self.id}"))

    def fits_age(self, age_years: int | None) -> bool:
        """Whether the age is within the service's bounds; an unknown age fits any service."""
        if age_years is None:
            return True
        if self.minimum_age is not None and age_years < self.minimum_age:
            return False
        return not (self.maximum_age is not None and age_years > self.maximum_age)

    def phone_of(self, kind: Literal["voice", "text"]) -> PhoneConfig | None:
        return next((p for p in self.phones if p.type == kind), None)


class SignpostingDirectory(_Config):
    """A validated directory. Build it with ``load_signposting`` or ``directory_from_content``."""

    label: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=64)]
    description: str = ""
    version: str
    organizations: list[OrganizationConfig] = Field(min_length=1)
    services: list[ServiceConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems = _reference_problems(self) + _coverage_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @cached_property
    def organization_by_id(self) -> dict[str, OrganizationConfig]:
        return {o.id: o for o in self.organizations}

    @cached_property
    def service_by_id(self) -> dict[str, ServiceConfig]:
        """By configured id and by HSDS (uuid) id."""
        found = {s.id: s for s in self.services}
        found.update({s.oruk_id: s for s in self.services})
        return found

    def organization(self, service: ServiceConfig) -> OrganizationConfig:
        return self.organization_by_id[service.organization_id]


def _reference_problems(directory: SignpostingDirectory) -> list[str]:
    problems = []
    ids: dict[str, list[str]] = {
        "organizations": [o.id for o in directory.organizations],
        "services": [s.id for s in directory.services],
    }
    for kind, item_ids in ids.items():
        seen: set[str] = set()
        for index, item_id in enumerate(item_ids):
            if item_id in seen:
                problems.append(f"{kind}.{index}.id: {item_id!r} is used twice")
            seen.add(item_id)
    organization_ids = set(ids["organizations"])
    for index, service in enumerate(directory.services):
        if service.organization_id not in organization_ids:
            problems.append(
                f"services.{index}.organization_id: {service.organization_id!r} is not an "
                "organization in this directory"
            )
    return problems


def _coverage_problems(directory: SignpostingDirectory) -> list[str]:
    """Every age must have a national service open to anyone (no needs, not home-area only):
    the guarantee that every ineligible or advice-only person is given somewhere to turn."""
    universal = [
        s for s in directory.services if s.is_national and not s.needs and s.status == "active"
    ]
    uncovered = [
        age
        for age in range(MAX_AGE_YEARS_ALLOWED + 1)
        if not any(s.fits_age(age) for s in universal)
    ]
    if not uncovered:
        return []
    return [
        "services: no active national service without needs covers age "
        f"{uncovered[0]}"
        + (f" (nor {len(uncovered) - 1} other ages)" if len(uncovered) > 1 else "")
        + "; every age 0-150 needs one, so that nobody is left without somewhere to turn"
    ]


def load_signposting(path: str | Path | None = None) -> SignpostingDirectory:
    """Read and validate a directory YAML file; None means the packaged default.

    Raises SignpostingError naming each bad key path.
    """
    source = DEFAULT_SIGNPOSTING_PATH if path is None else Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise SignpostingError(
            f"{source}: cannot read the signposting directory ({exc.strerror})"
        ) from exc
    try:
        content = yaml.load(text, Loader=_StrictYamlLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise SignpostingError(f"{source}: not valid YAML: {exc}") from exc
    return directory_from_content(content)


def directory_from_content(content: Any) -> SignpostingDirectory:
    """Validate already-parsed directory content into a SignpostingDirectory."""
    if not isinstance(content, Mapping):
        raise SignpostingError("the directory must be a mapping of keys to values at its top level")
    if any(key in content for key in _LOADER_COMPUTED_KEYS):
        raise SignpostingError("version: computed when the directory loads; remove it")
    owned = copy.deepcopy(dict(content))
    try:
        canonical = json.dumps(
            owned, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
        )
    except TypeError as exc:
        raise SignpostingError(f"every key in the directory must be text ({exc})") from exc
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:VERSION_HASH_HEX_DIGITS]
    try:
        return SignpostingDirectory.model_validate(
            {**owned, "version": f"{owned.get('label')}+{digest}"}
        )
    except ValidationError as exc:
        raise SignpostingError([_describe(error) for error in exc.errors()]) from None


class _StrictYamlLoader(yaml.SafeLoader):
    """A SafeLoader that rejects duplicate keys (PyYAML silently keeps the last one)."""


def _no_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_StrictYamlLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def _describe(error: Any) -> str:
    path = ".".join(str(part) for part in error["loc"])
    message = str(error["ctx"]["error"]) if error["type"] == "value_error" else error["msg"]
    return f"{path}: {message}" if path else message
