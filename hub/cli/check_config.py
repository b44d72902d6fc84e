"""`diemcau check-config`: validate a config; every problem names its key and line."""

from __future__ import annotations

from pathlib import Path

import click

from hub.cli.options import fail
from hub.config import ConfigError, load_config


@click.command("check-config")
@click.argument("config_file", type=click.Path(dir_okay=False, path_type=Path))
def check_config(config_file: Path) -> None:
    """Validate a config file; print what it holds, or each problem with its key and line (exit 1)."""
    try:
        config = load_config(config_file)
    except ConfigError as exc:
        fail(str(exc))
    groups = len({s.group for s in config.sites if s.group})
    click.echo(f"{config_file}: ok")
    click.echo(f"  event      {config.event.id}: {config.event.title}")
    click.echo(f"  when       {config.event.starts_at:%Y-%m-%d %H:%M} {config.event.timezone}, "
               f"{config.event.duration_minutes} minutes")
    click.echo(f"  sites      {len(config.sites)} (central: {config.central.id}), expected {config.expected_total:,} people"
               + (f", {groups} groups" if groups else ""))
    click.echo(f"  lists      {len(config.categories)} categories, {len(config.topics)} topics, "
               f"{len(config.agencies)} agencies, {len(config.checklist)} checklist items, {len(config.agenda)} agenda items")
    click.echo(f"  bridge     {config.bridge.kind + ' at ' + config.bridge.url if config.bridge else 'none'}")
