"""The artifact store: where retrains leave their exported datasets and models, behind one
interface, and where the engine and the batch workers read models back.

`file://` (or a plain path) is a directory on this machine, the default; `s3://bucket/prefix`
is S3 or an S3-compatible service through aioboto3 (multipart uploads, streamed from disk), so
AWS Personalize's import jobs can read what a retrain exported and engines and workers on
other machines can load the models it trained.
"""

import asyncio
import secrets
import shutil
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

import aioboto3

from mgrecs.common.settings import Settings
from mgrecs.common.usage import METER, STORED_BYTES


class ArtifactStore(Protocol):
    """Puts local files under a name and fetches them back; names use `/`."""

    url: str

    async def put(self, local: Path, name: str) -> str:
        """Store the file at `local` as `name`; returns its URI."""
        ...

    async def get(self, name: str, local: Path) -> None:
        """Copy `name` to the file `local`."""
        ...


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.url = self.root.as_uri()

    async def put(self, local: Path, name: str) -> str:
        _count_stored(local)
        target = self.root / name
        await asyncio.to_thread(_copy, local, target)
        return target.as_uri()

    async def get(self, name: str, local: Path) -> None:
        await asyncio.to_thread(_copy, self.root / name, local)


def _count_stored(local: Path) -> None:
    """The file's bytes, for the cost report's S3 storage (the batch writes artifacts)."""
    METER.add("batch", STORED_BYTES, local.stat().st_size)


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


class S3Store:
    def __init__(self, bucket: str, prefix: str, settings: Settings) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._settings = settings

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def _client(self) -> Any:
        settings = self._settings
        session = aioboto3.Session(
            aws_access_key_id=settings.aws_access_key_id,
            aws_secret_access_key=settings.aws_secret_access_key,
            region_name=settings.aws_region,
        )
        return session.client("s3", endpoint_url=settings.s3_endpoint_url or None)

    async def put(self, local: Path, name: str) -> str:
        _count_stored(local)
        async with self._client() as s3:
            await s3.upload_file(str(local), self.bucket, self._key(name))
        return f"s3://{self.bucket}/{self._key(name)}"

    async def get(self, name: str, local: Path) -> None:
        local.parent.mkdir(parents=True, exist_ok=True)
        async with self._client() as s3:
            await s3.download_file(self.bucket, self._key(name), str(local))


def open_store(settings: Settings) -> ArtifactStore:
    """The store `settings.artifact_store_url` names (default: `settings.artifact_dir`)."""
    url = settings.artifact_store_url or settings.artifact_dir
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"artifact store {url!r} names no bucket")
        return S3Store(parsed.netloc, parsed.path, settings)
    if parsed.scheme == "file":
        return FileStore(Path(parsed.path))
    if parsed.scheme:
        raise ValueError(f"artifact store {url!r}: only file:// and s3:// are supported")
    return FileStore(Path(url))


MODEL_CACHE = "store-cache"
"""Under `artifact_dir`: the s3:// objects this process downloaded, by bucket and key."""


async def local_copy(uri: str, settings: Settings) -> Path:
    """The artifact at `uri` as a file on this machine: a plain path or `file://` URI as it
    is; an `s3://bucket/key` object downloaded once into `artifact_dir`/MODEL_CACHE (a model
    version's name is unique and its object never rewritten, so a copy never goes stale)."""
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        key = parsed.path.lstrip("/")
        target = Path(settings.artifact_dir) / MODEL_CACHE / parsed.netloc / key
        if not target.exists():
            partial = target.with_name(f"{target.name}.{secrets.token_hex(4)}.part")
            await S3Store(parsed.netloc, "", settings).get(key, partial)
            partial.replace(target)  # whole or absent, also with two processes at once
        return target
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme and len(parsed.scheme) > 1:  # one letter would be a Windows drive
        raise ValueError(f"unsupported artifact location {uri!r} (a path, file:// or s3://)")
    return Path(uri)
