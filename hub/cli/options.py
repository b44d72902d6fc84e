"""The options every command that reads an event shares (`--config`, `--db`) and how a command fails.

A leaf: every command module imports it, and it imports no command.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import click

from hub.config import ConfigError, load_config
from hub.log.base import StoreError


def default_db(config_path: Path) -> Path:
    """The database sits next to the config: `<config stem>.db`."""
    return config_path.with_suffix(".db")


def fail(message: str) -> NoReturn:
    click.secho(message, fg="red", err=True)
    sys.exit(1)


def config_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """`--config` and `--db`, loaded and checked once for every command that needs them."""
    @click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
                  help="The event's TOML config, e.g. config/kon-tum-2023.toml.")
    @click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path),
                  help="The SQLite database. Default: next to the config, <config stem>.db.")
    @functools.wraps(func)
    def wrapper(config_path: Path, db_path: Path | None, **kwargs: Any) -> Any:
        try:
            config = load_config(config_path)
        except ConfigError as exc:
            fail(str(exc))
        try:
            return func(config=config, config_path=config_path, db_path=db_path or default_db(config_path), **kwargs)
        except StoreError as exc:
            fail(str(exc))
    return wrapper


def parse_nats_urls(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    """`--nats URL[,URL…]`: the cluster's NATS servers, comma-separated (`host:port` means `nats://host:port`);
    None without the option, which is single-node mode. Giving several lets a command reach the cluster while one
    server is down."""
    if value is None:
        return None
    urls = [url if "://" in url else f"nats://{url}" for url in (part.strip() for part in value.split(",")) if url]
    if not urls:
        raise click.BadParameter("give at least one server, e.g. nats://10.0.0.1:4222,nats://10.0.0.2:4222")
    if any("@" in urlsplit(url).netloc for url in urls):  # a command line and its errors are seen by many
        raise click.BadParameter("no credentials in the URLs: put the cluster's token in --nats-token-file")
    return urls


def nats_option(help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--nats URL[,URL…]` (passed on as `nats_urls`, a list of URLs or None: cluster mode) and
    `--nats-token-file` (passed on as `nats_token`, the token the file holds): a file, or the
    DIEMCAU_NATS_TOKEN_FILE variable naming one, so the token is in no command line and no log."""
    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, nats_urls: list[str] | None, nats_token_file: Path | None, **kwargs: Any) -> Any:
            if nats_token_file is not None and nats_urls is None:
                fail("--nats-token-file goes with --nats")
            token = read_nats_token(nats_token_file) if nats_token_file is not None else None
            return func(*args, nats_urls=nats_urls, nats_token=token, **kwargs)

        wrapper = click.option(
            "--nats-token-file", type=click.Path(dir_okay=False, path_type=Path), envvar="DIEMCAU_NATS_TOKEN_FILE",
            help="With --nats: the file holding the token the NATS servers require (or set "
                 "DIEMCAU_NATS_TOKEN_FILE).")(wrapper)
        return click.option("--nats", "nats_urls", metavar="URL[,URL…]", callback=parse_nats_urls, help=help)(wrapper)
    return decorate


def read_nats_token(path: Path) -> str:
    """The token `path` holds, alone on one line; else the command fails, naming the file."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"--nats-token-file {path}: cannot read it ({getattr(exc, 'strerror', None) or exc})")
    if not token or "\n" in token:
        fail(f"--nats-token-file {path}: it must hold the token alone, on one line")
    return token
