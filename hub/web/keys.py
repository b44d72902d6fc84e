"""Typed application keys: the one module that names what the aiohttp app holds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from hub.core.hub import Hub

HUB: web.AppKey[Hub] = web.AppKey("hub")
