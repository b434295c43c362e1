"""procrastinate runs background work: its schema, and `jobs` slimmed to what it lacks.

procrastinate's schema is applied here, by our migrations, never by `procrastinate schema
--apply` at run time: it is the SQL the installed package ships
(`SchemaManager.get_schema()`), which stands for procrastinate's migrations up to
BASELINE_MIGRATION. pyproject pins procrastinate to that minor version; a newer one brings
files after BASELINE_MIGRATION in `procrastinate/sql/migrations`, for a later revision of
ours to apply, and this revision then refuses to run on the newer package rather than lay
down a schema those files would be applied to a second time.

`jobs` keeps the requester, kind, payload, result and error and links its procrastinate
job; the queue columns (status, attempts, run_after, the lease) go, since procrastinate
holds that state, and max_attempts moves into the procrastinate job's arguments, where the
retry strategy reads it. Every existing job gets a procrastinate job in the state it had: a
running one (its worker is gone with the upgrade) is queued again, its unfinished attempt
not counted. The downgrade maps them back and drops procrastinate's objects.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from procrastinate.schema import SchemaManager

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BASELINE_MIGRATION = "03.04.00_50_post_add_retry_failed_job_procedure.sql"  # procrastinate 3.10
QUEUE = "jobs"  # service.jobs.tasks.JOBS_QUEUE, written out: a migration is frozen

MOVE_JOBS = f"""
WITH moved AS (
    INSERT INTO procrastinate_jobs (queue_name, task_name, args, status, attempts, scheduled_at)
    SELECT '{QUEUE}', kind,
           jsonb_build_object('job_id', id, 'max_attempts', max_attempts),
           (CASE status WHEN 'done' THEN 'succeeded' WHEN 'failed' THEN 'failed' ELSE 'todo' END
           )::procrastinate_job_status,
           CASE WHEN status = 'running' THEN greatest(attempts - 1, 0) ELSE attempts END,
           CASE WHEN status IN ('queued', 'running') THEN run_after END
      FROM jobs ORDER BY id
    RETURNING id, (args ->> 'job_id')::bigint AS job_id
)
UPDATE jobs SET procrastinate_job_id = moved.id FROM moved WHERE jobs.id = moved.job_id
"""

MOVE_BACK = """
UPDATE jobs
   SET status = CASE p.status WHEN 'succeeded' THEN 'done' WHEN 'todo' THEN 'queued'
                              WHEN 'doing' THEN 'queued' ELSE 'failed' END,
       attempts = p.attempts,
       max_attempts = coalesce((p.args ->> 'max_attempts')::integer, 3),
       run_after = coalesce(p.scheduled_at, now())
  FROM procrastinate_jobs AS p
 WHERE p.id = jobs.procrastinate_job_id
"""

# Tables first (their triggers go with them), then every procrastinate_* function, then the
# types the functions took.
DROP_PROCRASTINATE = """
DROP TABLE procrastinate_periodic_defers, procrastinate_events, procrastinate_jobs,
           procrastinate_workers CASCADE;
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure
               FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
              WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\\_%'
    LOOP
        EXECUTE 'DROP FUNCTION ' || f;
    END LOOP;
END;
$$;
DROP TYPE procrastinate_job_to_defer_v1, procrastinate_job_event_type, procrastinate_job_status;
"""


def _check_baseline() -> None:
    """Refuse a procrastinate whose shipped schema is not the one this revision stands for."""
    newest = max(p.name for p in Path(SchemaManager.get_migrations_path()).glob("*.sql"))
    if newest != BASELINE_MIGRATION:
        raise RuntimeError(
            f"migration 0007 applies procrastinate's schema as of {BASELINE_MIGRATION}, but "
            f"the installed procrastinate ships {newest}: install the version pyproject.toml "
            "names, or add a revision that applies the newer files"
        )


def _execute_script(script: str) -> None:
    """Run a multi-statement script as it is: psycopg with no parameters sends it whole,
    so neither SQLAlchemy's `:name` nor psycopg's `%` placeholders are read in it."""
    op.get_bind().connection.driver_connection.execute(script)  # type: ignore[union-attr]


def upgrade() -> None:
    _check_baseline()
    _execute_script(SchemaManager.get_schema())
    op.add_column("jobs", sa.Column("procrastinate_job_id", sa.BigInteger(), nullable=True))
    op.execute(MOVE_JOBS)
    op.alter_column("jobs", "procrastinate_job_id", nullable=False)
    op.create_unique_constraint(
        op.f("uq_jobs_procrastinate_job_id"), "jobs", ["procrastinate_job_id"]
    )
    op.drop_index("ix_jobs_claimable", table_name="jobs")
    op.drop_constraint(op.f("ck_jobs_status"), "jobs", type_="check")
    for column in ("status", "attempts", "max_attempts", "run_after", "locked_by", "lease_until"):
        op.drop_column("jobs", column)


def downgrade() -> None:
    op.add_column(
        "jobs", sa.Column("status", sa.String(16), server_default="queued", nullable=False)
    )
    op.add_column("jobs", sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
    op.add_column(
        "jobs", sa.Column("max_attempts", sa.Integer(), server_default="3", nullable=False)
    )
    op.add_column(
        "jobs",
        sa.Column(
            "run_after", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
    )
    op.add_column("jobs", sa.Column("locked_by", sa.Text(), nullable=True))
    op.add_column("jobs", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.execute(MOVE_BACK)
    op.create_check_constraint(
        op.f("ck_jobs_status"), "jobs", "status IN ('queued', 'running', 'done', 'failed')"
    )
    op.create_index("ix_jobs_claimable", "jobs", ["status", "run_after"], unique=False)
    op.drop_constraint(op.f("uq_jobs_procrastinate_job_id"), "jobs", type_="unique")
    op.drop_column("jobs", "procrastinate_job_id")
    _execute_script(DROP_PROCRASTINATE)
