"""``frontdoor export mhsds --month YYYY-MM --out DIR`` (docs/domain/mhsds-extract.md).

Exit codes: 0 written; 2 a bad argument or a missing setting (the message names it); 1 the
folder cannot be written or the database cannot be read. Nothing but counts is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from app.config import Settings

if TYPE_CHECKING:
    from app.exports.mhsds import ExportOptions, ReportingPeriod

DEV_KEY_CONTEXT = b"frontdoor-mhsds-local-patient-id:"


def add_export_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = sub.add_parser("export", help="extracts for national data sets")
    export_sub = export.add_subparsers(dest="export_command", required=True)
    mhsds = export_sub.add_parser(
        "mhsds",
        help="the month's MHSDS v6.0 shaped CSV files (MHS101, MHS102, MHS201, MHS302) and a "
        "manifest",
    )
    mhsds.add_argument("--month", required=True, help="the reporting month, YYYY-MM")
    mhsds.add_argument(
        "--out", required=True, help="folder to write into (created if missing; files replaced)"
    )


def pseudonym_key(settings: Settings) -> bytes | None:
    """The LocalPatientID key: FRONTDOOR_MHSDS_PSEUDONYM_KEY; outside production, when unset, one
    derived from the JWT secret (stable for a local database). None: production without one."""
    if settings.mhsds_pseudonym_key is not None:
        return settings.mhsds_pseudonym_key.get_secret_value().encode("utf-8")
    if settings.is_production:
        return None
    return hashlib.sha256(
        DEV_KEY_CONTEXT + settings.jwt_secret.get_secret_value().encode("utf-8")
    ).digest()


def run_export(settings: Settings, args: argparse.Namespace) -> int:
    from app.exports.mhsds import ExportOptions, ReportingPeriod

    try:
        period = ReportingPeriod.parse(args.month)
    except ValueError as exc:
        print(f"frontdoor export mhsds: {exc}", file=sys.stderr)
        return 2
    provider = settings.provider_ods or settings.service_ods_code
    if provider is None:
        print(
            "frontdoor export mhsds: set FRONTDOOR_PROVIDER_ODS to the provider's ODS code "
            "(OrgIDProvider)",
            file=sys.stderr,
        )
        return 2
    key = pseudonym_key(settings)
    if key is None:
        print(
            "frontdoor export mhsds: FRONTDOOR_MHSDS_PSEUDONYM_KEY is required in production "
            "(the secret behind LocalPatientID; at least 32 characters)",
            file=sys.stderr,
        )
        return 2
    options = ExportOptions(provider_ods=provider, pseudonym_key=key)
    return asyncio.run(_export(settings, period, Path(args.out), options))


async def _export(
    settings: Settings, period: ReportingPeriod, out: Path, options: ExportOptions
) -> int:
    from sqlalchemy.exc import DBAPIError, OperationalError

    from app.exports.mhsds import ExportError, create_export_engine, export_month, row_counts_line

    engine = create_export_engine(settings)
    try:
        result = await export_month(engine, period, out, options)
    except ExportError as exc:
        print(f"frontdoor export mhsds: {exc}", file=sys.stderr)
        return 1
    except (OperationalError, DBAPIError, OSError) as exc:
        # The database is unreachable or failed mid-read: say so by type, never with a row.
        print(
            f"frontdoor export mhsds: the database could not be read ({type(exc).__name__}); "
            "nothing was written",
            file=sys.stderr,
        )
        return 1
    finally:
        await engine.dispose()
    print(row_counts_line(result), file=sys.stderr)
    print(str(out / "manifest.json"))
    return 0
