"""The demo application's migration job, as the compose_job runner runs it (`docker compose run --rm migrate`):
Alembic upgrades the branch named after the phase Switchyard passes in SWITCHYARD_MIGRATION_PHASE - expand,
migrate (backfills) or contract - to its head. A phase this version has no revisions for does nothing.

    SWITCHYARD_MIGRATION_PHASE=expand python3 /opt/demo-app/alembic/job.py
    python3 /opt/demo-app/alembic/job.py contract        # a phase as the argument wins over the variable

Exit codes: 0 done, 1 Alembic or the database failed (its error on stderr), 2 no valid phase.
"""

from __future__ import annotations

import os
import sys

PHASES = ("expand", "migrate", "contract")
HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv: list[str]) -> int:
    phase = argv[1] if len(argv) > 1 else os.environ.get("SWITCHYARD_MIGRATION_PHASE", "")
    if phase not in PHASES:
        print(
            f"SWITCHYARD_MIGRATION_PHASE={phase!r}: expected one of {', '.join(PHASES)} (or give it as the argument)",
            file=sys.stderr,
        )
        return 2
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config(os.path.join(HERE, "alembic.ini"))
    script = ScriptDirectory.from_config(config)
    labels = {label for revision in script.walk_revisions() for label in revision.branch_labels}
    version = os.environ.get("APP_VERSION", "?")
    if phase not in labels:
        print(f"{phase}: no revisions in {version}'s migrations (branches: {', '.join(sorted(labels)) or 'none'})")
        return 0
    print(f"{phase}: alembic upgrade {phase}@head ({version})", flush=True)
    try:
        command.upgrade(config, f"{phase}@head")
    except Exception as exc:  # Alembic's and the driver's errors: one line for the release's failure message
        print(
            f"{phase} failed: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}",
            file=sys.stderr,
        )
        return 1
    command.current(config)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
