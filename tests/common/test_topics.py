"""The topic-setup job (`mgrecs create-topics`) gives each topic its partitions and retention."""

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from mgrecs.common import topics
from mgrecs.common.settings import Settings


async def test_topics_are_created_with_their_partitions_and_retention(settings: Settings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        names = {topics.topic(name, settings): name for name in topics.ALL_TOPICS}
        described = await admin.describe_topics(list(names))
        partitions = {d["topic"]: len(d["partitions"]) for d in described}
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        )
    finally:
        await admin.close()
    assert partitions == {physical: topics.PARTITIONS[name] for physical, name in names.items()}
    retention = {
        resource[3]: dict((entry[0], entry[1]) for entry in resource[4])
        for response in responses
        for resource in response.resources
    }
    for physical, name in names.items():
        assert retention[physical]["retention.ms"] == str(topics.retention_ms(name, settings))
