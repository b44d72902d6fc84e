"""The application factory: the only way an app is made, by `serve` and by the tests."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from hub.config import Config
from hub.core.hub import Clock, Hub
from hub.log.sqlite import SQLiteLog
from hub.web import api, deadlines, documents, metrics, pages, questions, report
from hub.web.cors import cors
from hub.web.keys import HUB

if TYPE_CHECKING:
    from hub.cluster.node import ClusterOptions


def create_app(config: Config, db_path: str | Path, clock: Clock | None = None,
               cluster: ClusterOptions | None = None) -> web.Application:
    """Build the hub for one event (a node of a cluster, given `cluster`); its log, writer and background
    tasks live in cleanup_ctx."""
    app = web.Application(client_max_size=4 * 1024 * 1024, middlewares=[cors])
    if cluster is None:
        hub = Hub(config, db_path, SQLiteLog(Path(db_path), config.event.id), clock or time.time)
        node = None
    else:
        from hub.cluster.node import ClusterNode  # nats-py is the `cluster` extra's
        from hub.log.jetstream import JetStreamLog

        replicated = JetStreamLog(cluster.servers, Path(db_path), config.event.id, cluster.token)
        hub = Hub(config, db_path, replicated, clock or time.time)
        node = ClusterNode(hub, replicated, cluster)
    app[HUB] = hub

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await hub.start()
        if node is not None:
            try:
                await node.start()
            except BaseException:  # a node that cannot join leaves as cleanly as one stopped
                await node.stop()
                await hub.stop()
                raise
        yield
        if node is not None:
            await node.stop()
        await hub.stop()

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(lambda app: hub.close_connections())  # before aiohttp waits for open handlers
    for routes in (api, pages, questions, deadlines, documents, metrics, report):
        routes.add_routes(app)
    return app
