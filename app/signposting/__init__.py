"""Signposting: the directory of services to point people to, and matching (pure code).

``load_signposting()`` reads and validates the directory (HSDS 3 shaped YAML);
``match_services(directory, query)`` picks the services that fit one person.
"""

from functools import lru_cache

from app.signposting.directory import (
    DEFAULT_SIGNPOSTING_PATH,
    NATIONAL,
    OrganizationConfig,
    ServiceConfig,
    SignpostingDirectory,
    SignpostingError,
    directory_from_content,
    load_signposting,
)
from app.signposting.matching import (
    SignpostQuery,
    match_services,
    needs_signposting,
    postcode_area,
    query_for_decision,
    service_public,
    signposting_for,
)

__all__ = [
    "DEFAULT_SIGNPOSTING_PATH",
    "NATIONAL",
    "OrganizationConfig",
    "ServiceConfig",
    "SignpostQuery",
    "SignpostingDirectory",
    "SignpostingError",
    "default_signposting",
    "directory_from_content",
    "load_signposting",
    "match_services",
    "needs_signposting",
    "postcode_area",
    "query_for_decision",
    "service_public",
    "signposting_for",
]


@lru_cache(maxsize=1)
def default_signposting() -> SignpostingDirectory:
    """The packaged default directory, read once (callers with an app pass its own)."""
    return load_signposting()
