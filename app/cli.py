"""``frontdoor``: serve the API, migrate the database, issue local tokens, manage API clients."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from app.clock import Clock
from app.config import Settings, get_settings
from app.exports.command import add_export_parser, run_export
from app.security import Role


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="frontdoor", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser(
        "serve", help="serve the API (the embedded SQLite default migrates itself)"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="worker processes")
    serve.add_argument(
        "--migrate",
        action="store_true",
        help="apply migrations before serving (always done for SQLite)",
    )

    sub.add_parser(
        "worker",
        help="deliver messages from the outbox (GOV.UK Notify, or the local sink without a key)",
    )

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("--revision", default="head")

    token = sub.add_parser("token", help="print a staff token for local use (not in production)")
    token.add_argument("--role", required=True, choices=[r.value for r in Role])
    token.add_argument(
        "--queue",
        action="append",
        default=[],
        dest="queues",
        help="a queue id the user's team works (repeat for several)",
    )
    token.add_argument("--name", default=None, help="display name")
    token.add_argument(
        "--id",
        "--subject",
        dest="subject",
        default=None,
        help="user id (default: the same id every time for the same --name, so a worker keeps "
        "the cases they hold)",
    )
    token.add_argument(
        "--lifetime-minutes",
        type=int,
        default=None,
        help="how long the token lives (default FRONTDOOR_JWT_LIFETIME_MINUTES; at most "
        "FRONTDOOR_JWT_MAX_LIFETIME_HOURS)",
    )

    client = sub.add_parser("client", help="referring-system credentials")
    client_sub = client.add_subparsers(dest="client_command", required=True)
    create = client_sub.add_parser("create", help="create a client and print its API key once")
    create.add_argument("--name", required=True)
    create.add_argument("--ods", required=True, help="the organisation's ODS code")
    revoke = client_sub.add_parser("revoke", help="revoke a client's key")
    revoke.add_argument("client_id")
    client_sub.add_parser("list", help="list clients (never their keys)")

    add_export_parser(sub)

    rules = sub.add_parser("rules", help="triage rulesets: check, publish, activate, list")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True)
    check = rules_sub.add_parser("check", help="validate a ruleset file offline (exit 2 if bad)")
    check.add_argument("file")
    publish = rules_sub.add_parser(
        "publish", help="validate and store a ruleset file (not active until activated)"
    )
    publish.add_argument("file")
    publish.add_argument("--label", default=None, help="replaces the file's label (and version)")
    activate = rules_sub.add_parser(
        "activate", help="make a stored version live on every process (an older one rolls back)"
    )
    activate.add_argument("version")
    rules_sub.add_parser("list", help="stored versions, the active one marked *")
    replay = rules_sub.add_parser(
        "replay",
        help="what-if: re-decide past referrals under the active ruleset and a candidate file "
        "(reads only; audited; about 1-2 minutes per million referrals stored)",
    )
    replay.add_argument("file", help="the candidate ruleset (YAML); it is not stored")
    replay.add_argument("--from", dest="from_", default=None, help="first received date")
    replay.add_argument("--to", default=None, help="last received date (YYYY-MM-DD, inclusive)")
    replay.add_argument("--json", action="store_true", help="print the report as JSON")

    args = parser.parse_args(argv)
    settings = get_settings()
    if args.command == "serve":
        return _serve(settings, args.host, args.port, args.workers, args.migrate)
    if args.command == "migrate":
        from app.migrate import NotReadyToServe, database_revision, upgrade

        try:
            database_revision(settings)  # unreachable: one line, not a traceback
        except NotReadyToServe as exc:
            print(f"frontdoor migrate: {exc}", file=sys.stderr)
            return 1
        upgrade(settings, args.revision)
        print(f"migrated to {args.revision}", file=sys.stderr)
        return 0
    if args.command == "token":
        return _token(settings, args)
    if args.command == "worker":
        return _worker(settings)
    if args.command == "client":
        return asyncio.run(_client(settings, args))
    if args.command == "export":
        return run_export(settings, args)
    if args.command == "rules":
        if args.rules_command == "check":
            return _rules_check(args.file)
        if args.rules_command == "replay":
            return asyncio.run(_rules_replay(settings, args))
        return asyncio.run(_rules(settings, args))
    parser.error("unknown command")
    return 2


def _serve(settings: Settings, host: str, port: int, workers: int, migrate: bool) -> int:
    import uvicorn

    from app.logs import configure_logging
    from app.migrate import NotReadyToServe, check_ready_to_serve

    configure_logging(settings.log_level, settings.log_json)
    try:
        # The embedded SQLite default always migrates itself; PostgreSQL only when asked.
        check_ready_to_serve(settings, migrate=migrate or settings.is_sqlite)
    except NotReadyToServe as exc:
        # One line to act on, not a traceback: the database is unreachable or not migrated.
        print(f"frontdoor serve: {exc}", file=sys.stderr)
        return 1
    uvicorn.run("app.main:create_app", **uvicorn_options(host, port, workers))
    return 0


def _worker(settings: Settings) -> int:
    """Run the delivery worker until SIGINT or SIGTERM; it finishes the round it is in."""
    import signal

    from app.logs import configure_logging
    from app.migrate import NotReadyToServe, check_ready_to_serve
    from app.worker import run_worker

    configure_logging(settings.log_level, settings.log_json)
    try:
        check_ready_to_serve(settings, migrate=settings.is_sqlite)
    except NotReadyToServe as exc:
        print(f"frontdoor worker: {exc}", file=sys.stderr)
        return 1

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await run_worker(settings, stop)

    asyncio.run(main())
    return 0


def uvicorn_options(host: str, port: int, workers: int) -> dict[str, Any]:
    """How ``serve`` runs uvicorn.

    ``proxy_headers=False``: uvicorn would otherwise believe ``X-Forwarded-For`` from
    127.0.0.1 (its default ``forwarded_allow_ips``) and hand the app a client-chosen address,
    bypassing the per-address limit. The client address comes only from the app's own
    ``FRONTDOOR_FORWARDED_FOR_TRUSTED_HOPS`` (``app.ratelimit.client_address``).
    """
    return {
        "factory": True,
        "host": host,
        "port": port,
        "workers": workers,
        "access_log": False,  # we log by route template; uvicorn's line has the query string
        "log_config": None,
        "server_header": False,
        "proxy_headers": False,
        "forwarded_allow_ips": "",
    }


# Local user ids are derived from the name in this namespace: one id per name, on any machine.
LOCAL_STAFF_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:frontdoor:local-staff")


def local_staff_id(name: str | None, role: str) -> str:
    """The user id ``frontdoor token`` gives a name: the same every time (names compared
    case- and space-insensitively); without a name, one id per role."""
    key = " ".join(name.split()).casefold() if name and name.strip() else f"role:{role}"
    return str(uuid.uuid5(LOCAL_STAFF_NAMESPACE, key))


def _token(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import timedelta

    from app.security import issue_staff_token, max_token_lifetime

    if settings.is_production:
        print(
            "frontdoor token is for local use; production tokens come from the identity provider",
            file=sys.stderr,
        )
        return 2
    minutes = args.lifetime_minutes or settings.jwt_lifetime_minutes
    if minutes < 1 or timedelta(minutes=minutes) > max_token_lifetime(settings):
        print(
            f"a token may live at most {settings.jwt_max_lifetime_hours} hours "
            "(FRONTDOOR_JWT_MAX_LIFETIME_HOURS); choose a shorter --lifetime-minutes",
            file=sys.stderr,
        )
        return 2
    subject = args.subject or local_staff_id(args.name, args.role)
    print(
        issue_staff_token(
            settings,
            subject=subject,
            role=Role(args.role),
            queue_ids=args.queues,
            name=args.name,
            now=Clock().now(),
            lifetime=timedelta(minutes=minutes),
        )
    )
    print(f"user id: {subject}", file=sys.stderr)
    return 0


async def _client(settings: Settings, args: argparse.Namespace) -> int:
    from app.db import create_engine, create_session_factory
    from app.models import ApiClient
    from app.schemas.common import OdsCode
    from app.security import generate_api_key

    engine = create_engine(settings)
    try:
        async with create_session_factory(engine)() as session:
            now = Clock().now()
            if args.client_command == "create":
                from pydantic import TypeAdapter, ValidationError

                try:
                    # Upper-cased first: OdsCode checks its pattern before its own to_upper.
                    ods = TypeAdapter(OdsCode).validate_python(args.ods.strip().upper())
                except ValidationError:
                    print("--ods must be an ODS code (3-10 letters and digits)", file=sys.stderr)
                    return 2
                key = generate_api_key()
                row = ApiClient(
                    name=args.name,
                    ods_code=ods,
                    key_prefix=key.prefix,
                    key_hash=key.key_hash,
                    created_at=now,
                )
                session.add(row)
                await session.commit()
                print(f"client_id: {row.id}", file=sys.stderr)
                print("Store this API key now; it is not shown again:", file=sys.stderr)
                print(key.key)
                return 0
            if args.client_command == "revoke":
                try:
                    client_id = uuid.UUID(args.client_id)
                except ValueError:
                    print("client_id must be a uuid", file=sys.stderr)
                    return 2
                client = await session.get(ApiClient, client_id)
                if client is None:
                    print("no such client", file=sys.stderr)
                    return 1
                if client.revoked_at is None:
                    client.revoked_at = now
                    await session.commit()
                print(f"revoked {client.id}", file=sys.stderr)
                return 0
            for client in await session.scalars(select(ApiClient).order_by(ApiClient.created_at)):
                state = "revoked" if client.revoked_at else "active"
                print(f"{client.id}\t{client.ods_code}\t{state}\t{client.name}")
            return 0
    finally:
        await engine.dispose()


def _read_ruleset_file(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{path}: cannot read the ruleset file ({exc})", file=sys.stderr)
        return None


def _print_ruleset_problems(path: str, exc: Exception) -> None:
    from app.triage import RulesetError

    problems = exc.problems if isinstance(exc, RulesetError) else [str(exc)]
    print(f"{path}: not a valid ruleset", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)


def _rules_check(path: str, label: str | None = None) -> int:
    """Validate a ruleset file exactly as start-up and ``POST /v1/rulesets`` do, offline."""
    from app.services.rulesets import parse_candidate
    from app.triage import RulesetError

    text = _read_ruleset_file(path)
    if text is None:
        return 2
    try:
        ruleset = parse_candidate(text, label=label)
    except RulesetError as exc:
        _print_ruleset_problems(path, exc)
        return 2
    print(f"{ruleset.version}\tvalid")
    return 0


def _cli_actor() -> Any:
    """Who runs ``frontdoor rules`` (the audit trail's actor): the operating-system account."""
    import getpass

    from app.security import Actor

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Actor(kind="system", id=f"cli:{user}"[:200])


async def _rules(settings: Settings, args: argparse.Namespace) -> int:
    from app.db import create_engine, create_session_factory
    from app.services import rulesets
    from app.triage import RulesetError

    actor = _cli_actor()
    text = None
    if args.rules_command == "publish":
        text = _read_ruleset_file(args.file)
        if text is None:
            return 2
    engine = create_engine(settings)
    try:
        async with create_session_factory(engine)() as session:
            now = Clock().now()
            if args.rules_command == "publish":
                assert text is not None
                try:
                    ruleset, created = await rulesets.publish_ruleset(
                        session, text, label=args.label, actor_id=actor.id, now=now
                    )
                except RulesetError as exc:
                    _print_ruleset_problems(args.file, exc)
                    return 2
                rulesets.audit_publication(session, actor, ruleset, created, now)
                await session.commit()
                state = "stored" if created else "already stored"
                print(f"{ruleset.version}\t{state}")
                print(f"make it live: frontdoor rules activate {ruleset.version}", file=sys.stderr)
                return 0
            if args.rules_command == "activate":
                try:
                    activation = await rulesets.activate_ruleset(
                        session, args.version, actor_id=actor.id, now=now
                    )
                except rulesets.RulesetNotFound:
                    print(
                        f"no stored ruleset has version {args.version!r} "
                        "(frontdoor rules list shows them)",
                        file=sys.stderr,
                    )
                    return 1
                rulesets.audit_activation(session, actor, activation, now)
                await session.commit()
                row = activation.row
                if not activation.changed:
                    print(f"{row.to_version}\talready active")
                else:
                    print(f"{row.to_version}\tactive (was {row.from_version or 'none'})")
                    print(
                        f"every process serves it within {settings.ruleset_check_seconds:g} s",
                        file=sys.stderr,
                    )
                return 0
            versions, _history = await rulesets.list_rulesets(session)
            for stored in versions:
                record = stored.record
                mark = "*" if stored.active else " "
                print(
                    f"{mark} {record.version}\t{record.first_loaded_at.isoformat()}\t"
                    f"{record.published_by or '-'}"
                )
            return 0
    finally:
        await engine.dispose()


async def _rules_replay(settings: Settings, args: argparse.Namespace) -> int:
    """``frontdoor rules replay``: the what-if report for a candidate file, as a table and a
    bar chart of the change per queue (docs/domain/rule-replay.md)."""
    from datetime import date

    import orjson

    from app.db import create_engine, create_session_factory
    from app.errors import Unprocessable
    from app.services import rulesets
    from app.services.replay import ReplayWindow, audited_replay, render_text
    from app.triage import RulesetError

    text = _read_ruleset_file(args.file)
    if text is None:
        return 2
    try:
        candidate = rulesets.parse_candidate(text)
    except RulesetError as exc:
        _print_ruleset_problems(args.file, exc)
        return 2
    bounds: dict[str, date | None] = {}
    for name, value in (("from", args.from_), ("to", args.to)):
        try:
            bounds[name] = None if value is None else date.fromisoformat(value)
        except ValueError:
            print(f"--{name} must be a date, YYYY-MM-DD", file=sys.stderr)
            return 2
    try:
        window = ReplayWindow(start=bounds["from"], end=bounds["to"])
    except Unprocessable:
        print("--to must be on or after --from", file=sys.stderr)
        return 2
    actor = _cli_actor()
    engine = create_engine(settings)
    try:
        async with create_session_factory(engine)() as session:
            active = await rulesets.active_ruleset(session)
            report = await audited_replay(
                session,
                actor=actor,
                active=active,
                candidate=candidate,
                window=window,
                now=Clock().now(),
            )
            await session.commit()
    finally:
        await engine.dispose()
    summary = report.to_dict()
    if args.json:
        print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    else:
        print(render_text(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
