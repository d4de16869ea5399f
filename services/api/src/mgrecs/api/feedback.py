"""Publishing the frontend's feedback to topic `feedback` (the tracker's feedback sink lands
it in PostgreSQL).

The producer starts on the first feedback request, not with the API: the recommendation
endpoints must serve while the broker is away, and only `POST /v1/feedback` answers 503 then.
"""

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from mgrecs.common import topics
from mgrecs.common.correlation import kafka_headers
from mgrecs.common.feedback import FeedbackEvent
from mgrecs.common.kafka import make_producer
from mgrecs.common.settings import Settings

PUBLISH_TIMEOUT_SECONDS = 10.0
"""Budget for starting the producer and for the broker to take one request's events."""


class FeedbackUnavailable(Exception):
    """The broker did not take the events: the client should send them again."""


class FeedbackPublisher:
    """One producer per API process, started on first use and stopped with the app."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._topic = topics.topic(topics.FEEDBACK, settings)
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()

    async def publish(self, events: Sequence[FeedbackEvent]) -> None:
        """Every event on the topic (acks=all), keyed by customer id, or FeedbackUnavailable."""
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
                producer = await self._started()
                headers = kafka_headers()  # the feedback sink logs the request's id
                sent = [
                    await producer.send(
                        self._topic,
                        value=event.model_dump_json().encode(),
                        key=event.customer_id.encode(),
                        headers=headers,
                    )
                    for event in events
                ]
                await asyncio.gather(*sent)
        except (KafkaError, TimeoutError, OSError) as exc:
            raise FeedbackUnavailable(str(exc) or type(exc).__name__) from exc

    async def _started(self) -> AIOKafkaProducer:
        async with self._starting:
            if self._producer is None:
                producer = make_producer(self._settings)
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
