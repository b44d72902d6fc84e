"""`diemcau documents`: the official documents written from the stored log, without a running hub."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import click

from hub.cli.options import config_options
from hub.config import Config
from hub.core.schedule import today
from hub.documents.letters import Report, render
from hub.report.build import report_from_db


def write_all(config: Config, report: Report, day: dt.date, out: Path) -> list[Path]:
    """Render every document into `out`; return the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in render(config, report, day).items():
        path = out / name
        path.write_bytes(content)
        written.append(path)
    return written


@click.command("documents")
@config_options
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for the .docx files (created if missing).")
@click.option("--date", "date_", type=click.DateTime(["%Y-%m-%d"]),
              help="Date on the place-date line (YYYY-MM-DD). Default: today in the event's time zone.")
def documents_command(config: Config, config_path: Path, db_path: Path, out: Path, date_: dt.datetime | None) -> None:
    """Write the official documents (.docx) from the stored log, without a running hub.

    \b
    One letter (công văn) per agency forwarding its deferred questions for written answers, and
    the summary report (báo cáo) of the meeting, in the format of Decree 30/2020/NĐ-CP. Who issues
    and signs them comes from the config's optional [documents] section.
    Example:
      diemcau documents --config config/kon-tum-2023.toml --out var/documents
    """
    report = report_from_db(config, db_path)  # a missing database is a StoreError, shown by config_options
    day = date_.date() if date_ else today(config.event.tz, time.time())
    for path in write_all(config, report, day, out):
        click.echo(str(path))
