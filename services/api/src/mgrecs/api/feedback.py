"""Publishing the frontend's feedback to topic `feedback` (the tracker's feedback sink lands
it in PostgreSQL).

The broker connects on the first feedback request, not with the API: the recommendation
endpoints must serve while the broker is away, and only `POST /v1/feedback` answers 503 then.
It publishes through the FastStream publisher `channels` declares for `feedback` (the AsyncAPI
document's).
"""

import asyncio
from collections.abc import Sequence

from aiokafka.errors import KafkaError

from mgrecs.common import channels
from mgrecs.common.consume import make_broker
from mgrecs.common.correlation import publish_headers
from mgrecs.common.feedback import FeedbackEvent
from mgrecs.common.settings import Settings

PUBLISH_TIMEOUT_SECONDS = 10.0
"""Budget for starting the producer and for the broker to take one request's events."""


class FeedbackUnavailable(Exception):
    """The broker did not take the events: the client should send them again."""


class FeedbackPublisher:
    """One broker connection per API process, made on first use and closed with the app."""

    def __init__(self, settings: Settings) -> None:
        self.broker = make_broker(settings, batching=True)
        self._events = channels.publisher(self.broker, settings, channels.FEEDBACK)
        self._connected = False
        self._starting = asyncio.Lock()

    async def publish(self, events: Sequence[FeedbackEvent]) -> None:
        """Every event on the topic (acks=all), keyed by customer id, or FeedbackUnavailable."""
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
                await self.connect()
                headers = publish_headers()  # the feedback sink logs the request's id
                sent = [
                    await self._events.publish(
                        event.model_dump_json().encode(),
                        key=event.customer_id.encode(),
                        headers=headers,
                        no_confirm=True,
                    )
                    for event in events
                ]
                await asyncio.gather(*sent)
        except (KafkaError, TimeoutError, OSError) as exc:
            raise FeedbackUnavailable(str(exc) or type(exc).__name__) from exc

    async def connect(self) -> None:
        """Connect the broker once; a failed attempt is undone, so the next request retries."""
        async with self._starting:
            if not self._connected:
                try:
                    await self.broker.start()
                except BaseException:
                    await self.broker.stop()
                    raise
                self._connected = True

    async def close(self) -> None:
        if self._connected:
            await self.broker.stop()
            self._connected = False
