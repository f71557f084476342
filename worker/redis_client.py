"""The one way to open Redis: URL, ACL user, password and TLS CA from the settings.

The worker's store, the dashboard API and the replay all connect through here, so ACL
(``EMOSTREAM_REDIS_USERNAME``) and TLS (a ``rediss://`` URL, ``EMOSTREAM_REDIS_SSL_CA``)
work the same everywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import redis
import redis.asyncio as aioredis

if TYPE_CHECKING:
    from .settings import WorkerSettings

TIMEOUT_S = 5.0


def connection_options(settings: WorkerSettings, decode_responses: bool = False) -> dict:
    options: dict = {
        "socket_timeout": TIMEOUT_S,
        "socket_connect_timeout": TIMEOUT_S,
        "decode_responses": decode_responses,
    }
    if settings.redis_password:
        options["password"] = settings.redis_password
    if settings.redis_username:
        options["username"] = settings.redis_username
    if settings.redis_ssl_ca:
        options["ssl_ca_certs"] = settings.redis_ssl_ca
    return options


def async_client(settings: WorkerSettings, decode_responses: bool = False) -> aioredis.Redis:
    """An asyncio client (worker store, API)."""
    return aioredis.Redis.from_url(
        settings.redis_url, **connection_options(settings, decode_responses)
    )


def sync_client(settings: WorkerSettings, decode_responses: bool = False) -> redis.Redis:
    """A blocking client (replay progress, tools)."""
    options = connection_options(settings, decode_responses)
    return redis.Redis.from_url(settings.redis_url, **options)
