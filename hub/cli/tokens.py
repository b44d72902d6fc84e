"""`diemcau token` and `diemcau access-sheet`: tokens made, listed and revoked outside the running hub."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hub.cli.options import config_options, fail, nats_option
from hub.cli.serve import base_url
from hub.config import Config
from hub.documents.access_sheet import write_access_sheet
from hub.log.base import StoreError
from hub.roles import ROLES
from hub.tokens import IssuedToken, Spec, TokenStore, check_spec

if TYPE_CHECKING:
    from hub.cluster.tokens import ClusterTokens

CLUSTER_SECONDS = 30.0  # once connected: how long one command may wait for the cluster's answer


class TokensOnCluster:
    """The cluster's tokens for one command, called as a TokenStore is: each call connects, acts, disconnects.
    Imports nats-py only when used (it is the `cluster` extra's)."""

    def __init__(self, urls: list[str], event_id: str, nats_token: str | None = None) -> None:
        self.urls, self.event_id, self._nats_token = urls, event_id, nats_token

    def list(self) -> list[dict]:
        return self._run(lambda tokens: tokens.list(), create=False)

    def revoke(self, token_id: str) -> bool:
        return self._run(lambda tokens: tokens.revoke(token_id), create=False)

    def issue(self, role: str, site: str | None, agency: str | None, label: str | None) -> IssuedToken:
        return self._run(lambda tokens: tokens.issue(role, site, agency, label), create=True)

    def issue_many(self, specs: list[Spec]) -> list[IssuedToken]:
        return self._run(lambda tokens: tokens.issue_many(specs), create=True)

    def _run(self, use: Callable[[ClusterTokens], Awaitable[Any]], create: bool) -> Any:
        import nats.errors

        from hub.cluster.connect import connect
        from hub.cluster.tokens import ClusterTokens

        async def run() -> Any:
            nc = await connect(self.urls, "diemcau token", token=self._nats_token)
            try:
                tokens = ClusterTokens(nc, self.event_id)
                await asyncio.wait_for(tokens.open(create=create), CLUSTER_SECONDS)
                return await asyncio.wait_for(use(tokens), CLUSTER_SECONDS)
            except nats.errors.Error as exc:  # a timeout among them: no JetStream leader answered
                raise StoreError(f"the NATS cluster at {', '.join(self.urls)} did not answer ({exc})") from None
            except TimeoutError:
                raise StoreError(f"the NATS cluster at {', '.join(self.urls)} did not answer within "
                                 f"{CLUSTER_SECONDS:g} s") from None
            finally:
                await nc.close()

        return asyncio.run(run())


@click.command()
@config_options
@nats_option("The cluster's NATS servers: the token is made (or listed, revoked) there and valid on every node; "
             "--db is then not used.")
@click.option("--role", type=click.Choice(ROLES), help="The new token's role.")
@click.option("--site", help="The site a technician or registrar token is bound to.")
@click.option("--agency", help="The agency an agency token is bound to.")
@click.option("--label", help="Who holds it, for the audit trail.")
@click.option("--revoke", "revoke_id", metavar="TOKEN_ID", help="Revoke a token by its id (the part before the dot).")
@click.option("--list", "list_tokens", is_flag=True, help="List tokens (ids, roles, bindings; never secrets).")
@click.option("--public-url", help="Base URL for the printed page link.")
def token(config: Config, config_path: Path, db_path: Path, nats_urls: list[str] | None, nats_token: str | None,
          role: str | None,
          site: str | None, agency: str | None, label: str | None, revoke_id: str | None, list_tokens: bool,
          public_url: str | None) -> None:
    """Create a token and print it alone on the last line; or --revoke or --list tokens.

    \b
    Examples:
      diemcau token --config config/kon-tum-2023.toml --role registrar --site dak-ha --label "Chị Hoa"
      diemcau token --config config/kon-tum-2023.toml --revoke 3f2a9c1b
      diemcau token --config config/kon-tum-2023.toml --nats nats://10.0.0.1:4222,nats://10.0.0.2:4222 \\
          --nats-token-file /etc/diemcau/nats.token --role chair
    """
    store = (TokensOnCluster(nats_urls, config.event.id, nats_token) if nats_urls else
             TokenStore(db_path, config.event.id))
    if list_tokens:
        for row in store.list():
            state = "revoked" if row["revoked"] else "active"
            click.echo(f"{row['id']}  {row['role']:<10} {row['site'] or row['agency'] or '-':<14} {state:<8} {row['label'] or ''}")
        return
    if revoke_id:
        if not store.revoke(revoke_id):
            fail(f"no active token with id {revoke_id!r}")
        click.echo(f"token {revoke_id} revoked; a running hub closes its connections within seconds")
        return
    if role is None:
        fail("give --role (or --revoke / --list)")
    if site is not None and site not in config.site_ids:
        fail(f"unknown site {site!r}; sites are: {', '.join(list(config.site_ids)[:20])}")
    if agency is not None and agency not in {a.id for a in config.agencies}:
        fail(f"unknown agency {agency!r}")
    try:
        check_spec(role, site, agency)  # before anything is stored, or a cluster's bucket created
    except ValueError as exc:
        fail(str(exc))
    issued = store.issue(role, site, agency, label)
    url = public_url or base_url(config, "127.0.0.1", 8080)
    click.echo(f"{role} token {issued.identity.token_id} created", err=True)  # stderr is often logged: no secret
    click.echo(issued.link(url))
    click.echo(issued.token)


@click.command("access-sheet")
@config_options
@nats_option("The cluster's NATS servers: the new tokens are made there and valid on every node; --db is then "
             "not used.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="HTML file to write.")
@click.option("--public-url", required=True, help="How the halls reach the hub, e.g. https://diemcau.kontum.gov.vn")
@click.option("--site", "sites", multiple=True, help="Only these sites (repeatable). Default: every site.")
def access_sheet(config: Config, config_path: Path, db_path: Path, nats_urls: list[str] | None,
                 nats_token: str | None, out: Path, public_url: str, sites: tuple[str, ...]) -> None:
    """Issue new technician and registrar tokens and write a printable page per site with their QR codes."""
    unknown = [s for s in sites if s not in config.site_ids]
    if unknown:
        fail(f"unknown site(s): {', '.join(unknown)}")
    chosen = [s for s in config.sites if not sites or s.id in sites]
    store = (TokenStore(db_path, config.event.id) if nats_urls is None else
             TokensOnCluster(nats_urls, config.event.id, nats_token))
    try:
        issued = store.issue_many([(role, s.id, None, f"{s.name} (access sheet)")
                                   for s in chosen for role in ("technician", "registrar")])
    except StoreError as exc:
        fail(str(exc))
    write_access_sheet(config, issued, public_url, out)
    click.echo(f"{len(chosen)} site pages written to {out}")
