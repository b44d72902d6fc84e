"""`diemcau backup`: a consistent copy of the live database, on demand (`serve --backup-dir` does it on a schedule)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import click

from hub.log.backup import backup_database


@click.command("backup")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The event database, e.g. the one a running hub serves.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The backup file to write.")
def backup_command(db_path: Path, out: Path) -> None:
    """Copy the event database consistently, safe while the hub is running.

    \b
    Example:
      diemcau backup --db /var/lib/diemcau/kontum-2023.db --out /mnt/backup/kontum-2023-manual.db
    Restore: stop the hub, copy the backup over the database (delete its -wal and -shm files), start it.
    """
    if out.resolve() == db_path.resolve():
        raise click.ClickException("--out must not be the database itself")
    try:
        made = backup_database(db_path, out)
    except (OSError, sqlite3.Error) as exc:
        raise click.ClickException(f"backup failed: {exc}") from None
    click.echo(f"{made.path}: seq {made.seq}, {made.size:,} bytes")
