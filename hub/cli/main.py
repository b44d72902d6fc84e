"""The `diemcau` command line: one group, one module per command."""

from __future__ import annotations

import click

from hub import __version__
from hub.cli.audit import audit_command
from hub.cli.backup import backup_command
from hub.cli.check_config import check_config
from hub.cli.cluster import cluster_command
from hub.cli.doctor import doctor_command
from hub.cli.documents import documents_command
from hub.cli.import_questions import import_questions as import_questions_command
from hub.cli.report import report_command
from hub.cli.serve import serve
from hub.cli.tokens import access_sheet, token
from sites.agent import agent_command
from sites.simulator import simulate_command


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="diemcau")
def cli() -> None:
    """diemcau: the live hub for every connection point (điểm cầu) of a hybrid meeting.

    \b
    Quick start:
      diemcau check-config config/kon-tum-2023.toml
      diemcau serve --config config/kon-tum-2023.toml
    """


for command in (access_sheet, agent_command, audit_command, backup_command, check_config, cluster_command,
                doctor_command, documents_command, import_questions_command, report_command, serve, simulate_command,
                token):
    cli.add_command(command)


def main() -> None:
    cli()
