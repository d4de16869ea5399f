"""The puller lock: the one connector replica holding it pulls, the others are standbys.

It is a PostgreSQL session-level advisory lock (mgrecs.store.locks) on a connection of its
own, so it lasts exactly as long as that session: a leader that crashes or is killed frees it
at once, and one cut off from the database frees it when the server's TCP keepalives give up
(about 25 s, `KEEPALIVES`). The leader pings its connection every
`connector_lock_retry_seconds` and steps down when the ping fails: cut off, before the server
lets a standby in; when its session is ended under it (pg_terminate_backend, a restart), within
one interval. An overlap repeats records, it loses none: the watermark only moves forward and
the tracker writes each order id once.
"""

import asyncio
import contextlib

import asyncpg

from mgrecs.common.db import DATABASE_UNREACHABLE
from mgrecs.common.logging import get_logger
from mgrecs.common.probes import CHECK_TIMEOUT_SECONDS
from mgrecs.common.settings import Settings
from mgrecs.store.health import ping
from mgrecs.store.locks import connector_lock, lock_holder, try_lock, unlock

log = get_logger(__name__)
KEEPALIVES = {
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
}
"""The server's side of the lock connection: a vanished leader's session ends (and its lock
with it) after 10 + 5 x 3 s of silence, not the operating system's two hours."""
LOCK_ERRORS = (*DATABASE_UNREACHABLE, asyncpg.PostgresError)


class PullerLock:
    """The puller lock of `connector_source`, taken and watched on a dedicated connection."""

    def __init__(self, settings: Settings) -> None:
        self._url = settings.database_url
        self._name = connector_lock(settings.connector_source)
        self._every = settings.connector_lock_retry_seconds
        self._connection: asyncpg.Connection | None = None

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait as a standby until this replica holds the lock (True) or `stop` is set."""
        announced = False
        while not stop.is_set():
            try:
                connection = await self._connect()
                if await try_lock(connection, self._name):
                    log.info("connector_leading", lock=self._name)
                    return True
                if not announced:
                    holder = await lock_holder(connection, self._name)
                    log.info("connector_standby", lock=self._name, holder_pid=holder)
                    announced = True
            except LOCK_ERRORS as exc:
                log.warning("connector_lock_unavailable", lock=self._name, error=repr(exc))
                self._drop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._every)
        return False

    async def watch(self) -> str:
        """Return, saying why, once the lock's session stops answering (the lock may be gone,
        a standby may take it): the leader must stop pulling."""
        while (connection := self._connection) is not None:
            await asyncio.sleep(self._every)
            try:
                async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                    await ping(connection)
            except LOCK_ERRORS as exc:
                self._drop()
                return repr(exc)
        return "no lock connection"

    async def release(self) -> None:
        """Give the lock back and close its connection (a standby takes over at once)."""
        connection, self._connection = self._connection, None
        if connection is None or connection.is_closed():
            return
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                await unlock(connection, self._name)
                await connection.close()
        except (*LOCK_ERRORS, TimeoutError):
            connection.terminate()  # closing the session releases the lock all the same

    async def _connect(self) -> asyncpg.Connection:
        if self._connection is None or self._connection.is_closed():
            self._connection = await asyncpg.connect(
                self._url, timeout=CHECK_TIMEOUT_SECONDS, server_settings=KEEPALIVES
            )
        return self._connection

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.terminate()
