"""One way to consume: FastStream subscribers on a Kafka broker (over aiokafka) that
acknowledge a message by hand, only once its effect is durable.

A service builds its broker here (`make_broker`: the settings' TLS and SASL, acks=all),
declares its subscribers and publishers on it (`channels`), acknowledges each message with
`acknowledge_after`, runs until a `Stopping` is set (by `signals.stop_on_signals`, a test,
or a handler that failed) and stops the broker, which lets the messages in progress finish
first.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage
from faststream.kafka.subscriber.usecase import LogicSubscriber
from faststream.message import StreamMessage
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from mgrecs.common.kafka import BATCHING, Batching, tls_context
from mgrecs.common.logging import get_logger
from mgrecs.common.settings import Settings

SASL = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}
BROKER_DESCRIPTION = "The retail group's Kafka cluster"

UNBATCHED = Batching(linger_ms=0, max_batch_size=16 * 1024)
"""aiokafka's defaults: each write leaves at once."""

log = get_logger(__name__)

BROKER_LOG = logging.getLogger("mgrecs.broker")
"""FastStream's lines go through the process's logging (`configure_logging`: stderr as it is
when written). Without a logger of ours FastStream adds a handler on whatever `sys.stdout`
is when a broker starts, and keeps it: a stand-in that is closed later (a CLI run by a test
runner) then fails every line of every broker in the process."""


def security(settings: Settings) -> BaseSecurity | None:
    """The settings' TLS and SASL, as FastStream takes them (as `kafka.connection_options`
    gives them to the plain aiokafka clients)."""
    protocol = settings.kafka_security_protocol
    tls = protocol in ("SSL", "SASL_SSL")
    context = tls_context(settings)
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        return SASL[settings.kafka_sasl_mechanism](
            settings.kafka_sasl_username,
            settings.kafka_sasl_password,
            ssl_context=context,
            use_ssl=tls,
        )
    return BaseSecurity(ssl_context=context, use_ssl=True) if tls else None


def make_broker(
    settings: Settings, *, graceful_timeout: float | None = 15.0, batching: bool = False
) -> KafkaBroker:
    """A broker whose `stop()` waits up to `graceful_timeout` seconds for the messages being
    handled; its publishers wait for the broker to own each write (acks=all) and, with
    `batching`, gather writes as `kafka.BATCHING` says (the producers of many messages at a
    time). FastStream's per-message log lines are debug: the handlers log what matters."""
    return KafkaBroker(
        settings.kafka_bootstrap,
        security=security(settings),
        acks="all",
        allow_auto_create_topics=False,  # `kafka.ensure_topics` makes them, as configured
        graceful_timeout=graceful_timeout,
        logger=BROKER_LOG,
        log_level=logging.DEBUG,
        description=BROKER_DESCRIPTION,
        **(BATCHING if batching else UNBATCHED),
    )


async def raw_body(message: StreamMessage[Any]) -> Any:
    """The message's bytes as they are (a list of them for a batch): FastStream's default
    would try them as JSON first, work `read_message` does, poison-proof."""
    return message.body


async def acknowledge_after(
    message: KafkaMessage, stopping: "Stopping", work: Callable[[], Awaitable[bool]]
) -> None:
    """Run `work` for `message` and acknowledge the message (commit its offsets) once `work`
    says its effect is durable (True). Otherwise it is read again (nack): when the service is
    stopping before or during `work` (False), or when `work` raised, which stops the service
    with that error (the orchestrator restarts it) instead of skipping the message."""
    if stopping.is_set():
        await message.nack()
        return
    try:
        done = await work()
    except Exception as exc:
        log.exception("message_failed", **_position(message))
        await message.nack()
        stopping.fail(exc)
        return
    if not done:
        await message.nack()
        return
    try:
        await message.ack()
    except KafkaError as exc:
        # Typically a rebalance: the new owner reads the message again, harmlessly.
        log.warning("commit_failed", error=repr(exc), **_position(message))


def _position(message: KafkaMessage) -> dict[str, Any]:
    """Where the message (the first of a batch) was on the broker, for the logs."""
    raw = message.raw_message
    first = raw[0] if isinstance(raw, tuple) else raw
    return {"topic": first.topic, "partition": first.partition, "offset": first.offset}


async def consuming(subscriber: LogicSubscriber[Any]) -> str:
    """`ok` once `subscriber`'s consumer runs and the broker answers it (for `/readyz`)."""
    consumer = subscriber.consumer
    if consumer is None or not subscriber.running:
        return "not consuming yet"
    await consumer.topics()  # a metadata request to the cluster
    return "ok"


async def answering(broker: KafkaBroker) -> str:
    """`ok` once `broker` is connected and the cluster answers a metadata request (for
    `/readyz` of a service that only publishes)."""
    if not broker.running:
        return "not connected yet"
    await broker.config.admin_client.describe_cluster()
    return "ok"


class Stopping:
    """A service's stop: asked for (`stop`), or caused by a handler that failed (`fail`: its
    error then ends the run, so the orchestrator restarts the service)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.error: BaseException | None = None

    def stop(self) -> None:
        self._event.set()

    def fail(self, error: BaseException) -> None:
        self.error = self.error or error
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> None:
        await self._event.wait()

    async def pause(self, seconds: float) -> bool:
        """Sleep `seconds`; True if the stop came first (then at once)."""
        try:
            await asyncio.wait_for(self._event.wait(), seconds)
        except TimeoutError:
            return False
        return True
