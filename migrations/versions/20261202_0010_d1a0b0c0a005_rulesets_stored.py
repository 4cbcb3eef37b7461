"""rulesets stored, published and activated in the database

Revision ID: d1a0b0c0a005
Revises: d1a0b0c0a004
Create Date: 2026-12-02 00:10:00.000000

``rulesets`` gains the YAML text as published and who published it; ``ruleset_activations`` is
the append-only history of which version is live (the row with the highest ``seq``). Versions
already stored keep their content and get no text (they were loaded from a file, not
published). No activation is written here: the first start-up after this migration activates
the version it loads (docs/domain/changing-rules.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "d1a0b0c0a005"
down_revision: str | None = "d1a0b0c0a004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "ruleset_activations"


def upgrade() -> None:
    op.add_column("rulesets", sa.Column("source_yaml", sa.Text(), nullable=True))
    op.add_column("rulesets", sa.Column("published_by", sa.String(length=200), nullable=True))
    op.create_table(
        TABLE,
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("to_version", sa.String(length=128), nullable=False),
        sa.Column("from_version", sa.String(length=128), nullable=True),
        sa.Column("activated_by", sa.String(length=200), nullable=False),
        sa.Column("activated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["from_version"],
            ["rulesets.version"],
            name=op.f("fk_ruleset_activations_from_version_rulesets"),
        ),
        sa.ForeignKeyConstraint(
            ["to_version"],
            ["rulesets.version"],
            name=op.f("fk_ruleset_activations_to_version_rulesets"),
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_ruleset_activations")),
    )
    # The history is evidence of which rules were live when: the database refuses to change it
    # (PostgreSQL: the trigger function from the initial migration; SQLite: RAISE triggers).
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(
            f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION frontdoor_forbid_change()"
        )
    elif dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {TABLE}_no_{verb.lower()} BEFORE {verb} ON {TABLE} "
                f"BEGIN SELECT RAISE(ABORT, 'table {TABLE} is append-only'); END"
            )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}")
    elif dialect == "sqlite":
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_{verb}")
    op.drop_table(TABLE)
    with op.batch_alter_table("rulesets", schema=None) as batch_op:
        batch_op.drop_column("published_by")
        batch_op.drop_column("source_yaml")
