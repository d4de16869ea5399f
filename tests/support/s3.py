"""An S3 bucket on the test's S3 API (moto's server, the `s3_endpoint` fixture)."""

import aioboto3

from mgrecs.common.settings import Settings


async def s3_bucket(settings: Settings, endpoint: str, bucket: str) -> aioboto3.Session:
    """A session with the settings' keys, after creating `bucket` on the S3 API."""
    session = aioboto3.Session(
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key,
        region_name=settings.aws_region,
    )
    async with session.client("s3", endpoint_url=endpoint) as s3:
        await s3.create_bucket(Bucket=bucket)
    return session
