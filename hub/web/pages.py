"""The browser pages and their local assets, served by the hub itself (halls may have no internet)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from hub.web.api import node_origin
from hub.web.keys import HUB

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboard"
PAGES: dict[str, Path] = {
    "/": DASHBOARD / "chair.html",
    "/moderator": DASHBOARD / "moderator.html",
    "/projector": DASHBOARD / "projector.html",
    "/agency": DASHBOARD / "agency.html",
    "/technician": DASHBOARD / "technician.html",
    "/registrar": DASHBOARD / "registrar.html",
}


def _policy(connect: str = "") -> str:
    """The Content-Security-Policy; `connect`: origins beyond the hub's own a page may fetch from."""
    return (f"default-src 'self'; connect-src 'self' ws: wss:{' ' + connect if connect else ''}; "
            "img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")


# Pages may talk only to their own hub: this is what keeps a hall without internet working the same.
SECURITY_HEADERS = {
    "Content-Security-Policy": _policy(),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


def page_headers(node_urls: list[str]) -> dict[str, str]:
    """SECURITY_HEADERS, but a page of a cluster node may also fetch from the other live nodes: after a
    failover its reads and downloads go to the node it is then on (see hub.web.cors)."""
    if not node_urls:
        return SECURITY_HEADERS
    nodes = " ".join(sorted({node_origin(url) for url in node_urls}))
    return {**SECURITY_HEADERS, "Content-Security-Policy": _policy(nodes)}


def _page(path: Path):
    async def handler(request: web.Request) -> web.StreamResponse:
        if not path.exists():
            raise web.HTTPNotFound(text=f"page {path.name} is not built")
        return web.FileResponse(path, headers=page_headers(request.app[HUB].node_urls()))
    return handler


async def _favicon(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(DASHBOARD / "assets" / "favicon.svg", headers={"Content-Type": "image/svg+xml"})


@web.middleware
async def asset_headers(request: web.Request, handler):
    response = await handler(request)
    if request.path.startswith("/assets/"):
        response.headers.update(SECURITY_HEADERS)
    return response


def add_routes(app: web.Application) -> None:
    for route, path in PAGES.items():
        app.router.add_get(route, _page(path))
    app.router.add_static("/assets/", DASHBOARD / "assets", follow_symlinks=False)
    app.router.add_get("/favicon.ico", _favicon)
    app.middlewares.append(asset_headers)
