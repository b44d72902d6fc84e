"""The application factory: the only way an app is made, by `serve` and by the tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from hub.config import Config
from hub.core.hub import Clock, Hub
from hub.web import api, deadlines, documents, metrics, pages, questions, report
from hub.web.keys import HUB


def create_app(config: Config, db_path: str | Path, clock: Clock | None = None) -> web.Application:
    """Build the hub for one event; its log, writer and background tasks live in cleanup_ctx."""
    app = web.Application(client_max_size=4 * 1024 * 1024)
    hub = Hub(config, db_path, clock) if clock else Hub(config, db_path)
    app[HUB] = hub

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await hub.start()
        yield
        await hub.stop()

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(lambda app: hub.close_connections())  # before aiohttp waits for open handlers
    for routes in (api, pages, questions, deadlines, documents, metrics, report):
        routes.add_routes(app)
    return app
