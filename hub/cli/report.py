"""`diemcau report`: the post-event report from the stored database, with no hub running."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from hub.cli.options import config_options, fail
from hub.config import Config
from hub.report.build import report_from_db
from hub.report.formats import FORMATS, RENDERERS
from hub.report.tables import LANGS

PROGRESS_FROM = 20_000  # events; smaller logs fold in well under a second


class Percent:
    """A percentage on stderr while a long log is folded; silent for small ones."""

    def __init__(self) -> None:
        self.shown = -1

    def __call__(self, done: int, total: int) -> None:
        percent = done * 100 // max(total, 1)
        if total >= PROGRESS_FROM and percent != self.shown:
            self.shown = percent
            click.echo(f"\rreading {total:,} events: {percent}%", err=True, nl=False)

    def finish(self) -> None:
        if self.shown >= 0:
            click.echo(f"\rreading events: 100%{' ' * 20}", err=True)


@click.command("report")
@config_options
@click.option("--format", "form", type=click.Choice(FORMATS), required=True, help="What to write.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write. Default: standard output (html, csv, json).")
@click.option("--lang", type=click.Choice(LANGS), default="vi", show_default=True,
              help="Language of titles, headers and labels (JSON is the same in both).")
def report_command(config: Config, config_path: Path, db_path: Path, form: str, out: Path | None, lang: str) -> None:
    """Write the post-event report from the stored event log (the hub need not run).

    \b
    Examples:
      diemcau report --config config/kon-tum-2023.toml --format html --out report.html
      diemcau report --config config/kon-tum-2023.toml --format xlsx --out report.xlsx --lang en
      diemcau report --config config/kon-tum-2023.toml --format json | jq .totals
    """
    if form == "xlsx" and out is None:
        fail("a workbook is binary: give --out FILE.xlsx")
    started, progress = time.perf_counter(), Percent()
    model = report_from_db(config, db_path, progress=progress)
    progress.finish()
    body = RENDERERS[form](model, lang)
    seconds = time.perf_counter() - started
    if out is None:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
    else:
        out.write_bytes(body)
    click.echo(f"report ({form}, {lang}): {model['source']['events']:,} events, {model['totals']['sites']:,} sites, "
               f"{seconds:.1f} s" + (f", written to {out}" if out else ""), err=True)
