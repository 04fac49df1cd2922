"""S3 artifact store (aioboto3): multipart uploads streamed in bounded parts, sha256 on the fly.

Memory per upload is bounded by about `part_size * (upload_concurrency + 2)`. Any failure while
streaming - the source raising (a client that went away), a size limit, S3 errors, cancellation -
aborts the multipart upload, so no object and no orphaned parts remain. Every call is bounded by
botocore's connect/read timeouts and retried by its standard retry mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from typing import Any

import aioboto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from kubeserve_common.storage.base import (
    STAGING_ROOT,
    ArtifactNotFound,
    ArtifactStore,
    ObjectInfo,
    StorageError,
    validate_key,
)

log = logging.getLogger(__name__)

MIB = 1024 * 1024
_SINGLE_COPY_LIMIT = 5 * 1024 * MIB  # CopyObject's maximum; larger objects use UploadPartCopy
_COPY_PART = 512 * MIB
_CLEANUP_TIMEOUT = 30.0


@contextlib.contextmanager
def _s3_errors(action: str) -> Iterator[None]:
    """Translate botocore failures into the platform's StorageError (a 503 for HTTP callers)."""
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "?")
        raise StorageError(f"object store refused {action}: {code}") from exc
    except (BotoCoreError, TimeoutError, OSError) as exc:
        reason = type(exc).__name__
        raise StorageError(f"object store unreachable during {action}: {reason}") from exc


def _is_missing(exc: ClientError) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound", "NoSuchBucket")


class S3ArtifactStore(ArtifactStore):
    scheme = "s3"

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        addressing_style: str = "path",
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_attempts: int = 3,
        part_size: int = 8 * MIB,
        upload_concurrency: int = 1,
    ) -> None:
        if part_size < 5 * MIB:
            raise ValueError("S3 multipart parts must be at least 5 MiB")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.region = region
        self.part_size = part_size
        self.upload_concurrency = max(1, upload_concurrency)
        self._session = aioboto3.Session(
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region,
        )
        self._config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": max_attempts, "mode": "standard"},
            s3={"addressing_style": addressing_style},
            # SigV4 presigned URLs (botocore may fall back to SigV2 for a custom endpoint,
            # which newer AWS regions refuse): they carry X-Amz-Expires, capped at 7 days.
            signature_version="s3v4",
            # Checksums only where S3 requires them: the sha256 we compute is the integrity
            # record, and MinIO/moto differ in their support of the newer CRC trailers.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            max_pool_connections=32,
        )
        self._client: Any = None
        self._stack: AsyncExitStack | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self._bucket_ready = False

    # -- client --------------------------------------------------------------------------------
    async def _s3(self) -> Any:
        """One long-lived client per event loop (aiohttp sessions are loop-bound)."""
        loop = asyncio.get_running_loop()
        if self._client is not None and self._loop is loop:
            return self._client
        if self._lock is None or self._loop is not loop:
            self._lock = asyncio.Lock()
            self._loop = loop
            self._client = None
        async with self._lock:
            if self._client is None:
                stack = AsyncExitStack()
                self._client = await stack.enter_async_context(
                    self._session.client("s3", endpoint_url=self.endpoint_url, config=self._config)
                )
                self._stack = stack
        return self._client

    async def close(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            with contextlib.suppress(Exception):
                await stack.aclose()

    # -- keys ----------------------------------------------------------------------------------
    def _key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri_for(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def key_for(self, uri: str) -> str:
        head = f"s3://{self.bucket}/" + (f"{self.prefix}/" if self.prefix else "")
        if not uri.startswith(head):
            raise ValueError(f"{uri!r} is not in this store")
        return validate_key(uri[len(head) :])

    # -- bucket --------------------------------------------------------------------------------
    async def ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        client = await self._s3()
        with _s3_errors("bucket check"):
            try:
                await client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if not _is_missing(exc):
                    raise
                kwargs: dict[str, Any] = {"Bucket": self.bucket}
                if self.region != "us-east-1":
                    kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
                try:
                    await client.create_bucket(**kwargs)
                    log.info("created bucket", extra={"bucket": self.bucket})
                except ClientError as create_exc:
                    code = create_exc.response.get("Error", {}).get("Code")
                    if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise
                else:
                    await self._install_lifecycle(client)
        self._bucket_ready = True

    async def _install_lifecycle(self, client: Any) -> None:
        """On a bucket we created: expire what a crashed process can leave behind - parts of
        unfinished multipart uploads and staged uploads that never got a version. (A bucket that
        already existed keeps its owner's rules; see STAGING_ROOT in base.py.)"""
        staging = f"{self.prefix}/{STAGING_ROOT}" if self.prefix else STAGING_ROOT
        rules = [
            {
                "ID": "kubeserve-abort-incomplete-uploads",
                "Status": "Enabled",
                "Filter": {"Prefix": self.prefix + "/" if self.prefix else ""},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
            },
            {
                "ID": "kubeserve-expire-staging",
                "Status": "Enabled",
                "Filter": {"Prefix": staging},
                "Expiration": {"Days": 1},
            },
        ]
        try:
            await client.put_bucket_lifecycle_configuration(
                Bucket=self.bucket, LifecycleConfiguration={"Rules": rules}
            )
        except (ClientError, BotoCoreError) as exc:
            log.warning("could not set the bucket lifecycle rules", extra={"error": repr(exc)})

    async def check(self) -> None:
        await self.ensure_bucket()  # a fresh install is ready once it could create its bucket
        client = await self._s3()
        with _s3_errors("bucket check"):
            await client.head_bucket(Bucket=self.bucket)

    # -- writes --------------------------------------------------------------------------------
    async def _write(self, key: str, chunks: AsyncIterator[bytes], *, content_type: str) -> str:
        full = self._key(key)
        await self.ensure_bucket()
        client = await self._s3()
        pending: list[bytes] = []
        pending_size = 0
        upload_id: str | None = None
        etags: dict[int, str] = {}
        in_flight: set[asyncio.Task[None]] = set()
        next_part = 1

        async def upload_part(number: int, data: bytes) -> None:
            with _s3_errors("part upload"):
                resp = await client.upload_part(
                    Bucket=self.bucket, Key=full, UploadId=upload_id, PartNumber=number, Body=data
                )
            etags[number] = resp["ETag"]

        async def drain(limit: int) -> None:
            """Wait until at most `limit` parts are in flight; re-raise a failed part's error."""
            nonlocal in_flight
            while len(in_flight) > limit:
                done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()

        async def submit(data: bytes) -> None:
            nonlocal upload_id, next_part
            if upload_id is None:
                with _s3_errors("multipart start"):
                    resp = await client.create_multipart_upload(
                        Bucket=self.bucket, Key=full, ContentType=content_type
                    )
                upload_id = resp["UploadId"]
            await drain(self.upload_concurrency - 1)
            in_flight.add(asyncio.create_task(upload_part(next_part, data)))
            next_part += 1

        try:
            async for chunk in chunks:
                # Pieces are joined once per part, into exactly one part-sized allocation;
                # only the piece straddling the boundary is split (a small copy).
                pending.append(chunk)
                pending_size += len(chunk)
                while pending_size >= self.part_size:
                    last = pending.pop()
                    keep = len(last) - (pending_size - self.part_size)
                    pending.append(last[:keep] if keep < len(last) else last)
                    data = b"".join(pending)
                    pending = [last[keep:]] if keep < len(last) else []
                    pending_size = len(last) - keep
                    del last
                    await submit(data)
                    del data
            tail = b"".join(pending)
            pending.clear()
            if upload_id is None:
                with _s3_errors("upload"):
                    await client.put_object(
                        Bucket=self.bucket, Key=full, Body=tail, ContentType=content_type
                    )
            else:
                if tail:
                    await submit(tail)
                del tail
                await drain(0)
                parts = [{"PartNumber": n, "ETag": etags[n]} for n in sorted(etags)]
                with _s3_errors("multipart completion"):
                    await client.complete_multipart_upload(
                        Bucket=self.bucket,
                        Key=full,
                        UploadId=upload_id,
                        MultipartUpload={"Parts": parts},
                    )
        except BaseException:
            pending.clear()
            for task in in_flight:
                task.cancel()
            if upload_id is not None:
                # Shielded so that a cancelled request still aborts its upload (no orphan parts).
                await asyncio.shield(self._abort(full, upload_id, list(in_flight)))
            raise
        return self.uri_for(key)

    async def _abort(self, full: str, upload_id: str, tasks: list[asyncio.Task[None]]) -> None:
        # Let cancelled part uploads settle first: a part finishing after the abort could linger.
        await asyncio.gather(*tasks, return_exceptions=True)
        client = await self._s3()
        try:
            await asyncio.wait_for(
                client.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id),
                _CLEANUP_TIMEOUT,
            )
        except Exception as exc:  # a lifecycle rule for incomplete uploads is the backstop
            log.warning("could not abort multipart upload", extra={"key": full, "error": repr(exc)})

    async def move(self, src: str, dst: str) -> str:
        client = await self._s3()
        src_full, dst_full = self._key(src), self._key(dst)
        info = await self.stat(src)
        if info is None:
            raise ArtifactNotFound(f"no object {src}")
        source = {"Bucket": self.bucket, "Key": src_full}
        with _s3_errors("copy"):
            if info.size <= _SINGLE_COPY_LIMIT:
                await client.copy_object(Bucket=self.bucket, Key=dst_full, CopySource=source)
            else:
                await self._multipart_copy(client, source, dst_full, info.size)
        await self.delete(src)
        return self.uri_for(dst)

    async def _multipart_copy(
        self, client: Any, source: dict[str, str], dst: str, size: int
    ) -> None:
        upload_id = (await client.create_multipart_upload(Bucket=self.bucket, Key=dst))["UploadId"]
        try:
            parts = []
            for number, start in enumerate(range(0, size, _COPY_PART), start=1):
                end = min(start + _COPY_PART, size) - 1
                resp = await client.upload_part_copy(
                    Bucket=self.bucket,
                    Key=dst,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource=source,
                    CopySourceRange=f"bytes={start}-{end}",
                )
                parts.append({"PartNumber": number, "ETag": resp["CopyPartResult"]["ETag"]})
            await client.complete_multipart_upload(
                Bucket=self.bucket, Key=dst, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            await asyncio.shield(self._abort(dst, upload_id, []))
            raise

    async def delete(self, key: str) -> None:
        client = await self._s3()
        with _s3_errors("delete"):
            await client.delete_object(Bucket=self.bucket, Key=self._key(key))

    async def delete_prefix(self, prefix: str) -> int:
        if not prefix.endswith("/"):
            raise ValueError("a prefix must end with '/'")
        client = await self._s3()
        keys = [self._key(o.key) for o in await self.list_objects(prefix)]
        with _s3_errors("delete"):
            for start in range(0, len(keys), 1000):
                batch = [{"Key": k} for k in keys[start : start + 1000]]
                await client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
        return len(keys)

    # -- reads ---------------------------------------------------------------------------------
    async def open(
        self, key: str, *, chunk_size: int = 1024 * 1024
    ) -> tuple[int, AsyncIterator[bytes]]:
        client = await self._s3()
        with _s3_errors("download"):
            try:
                resp = await client.get_object(Bucket=self.bucket, Key=self._key(key))
            except ClientError as exc:
                if _is_missing(exc):
                    raise ArtifactNotFound(f"no object {key}") from None
                raise
        body = resp["Body"]

        async def chunks() -> AsyncIterator[bytes]:
            try:
                with _s3_errors("download"):
                    async for data in body.iter_chunks(chunk_size):
                        yield data
            finally:
                body.close()

        return int(resp["ContentLength"]), chunks()

    async def stat(self, key: str) -> ObjectInfo | None:
        client = await self._s3()
        with _s3_errors("stat"):
            try:
                resp = await client.head_object(Bucket=self.bucket, Key=self._key(key))
            except ClientError as exc:
                if _is_missing(exc):
                    return None
                raise
        return ObjectInfo(key, int(resp["ContentLength"]), resp.get("LastModified"))

    async def list_objects(self, prefix: str) -> list[ObjectInfo]:
        client = await self._s3()
        full_prefix = f"{self.prefix}/{prefix}" if self.prefix else prefix
        strip = len(self.prefix) + 1 if self.prefix else 0
        out: list[ObjectInfo] = []
        with _s3_errors("list"):
            paginator = client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=full_prefix):
                for obj in page.get("Contents", []):
                    key, size = obj["Key"][strip:], int(obj["Size"])
                    out.append(ObjectInfo(key, size, obj.get("LastModified")))
        return out

    async def pending_multipart_uploads(self, prefix: str = "") -> list[str]:
        """Keys with an unfinished multipart upload (diagnostics, tests)."""
        client = await self._s3()
        full_prefix = f"{self.prefix}/{prefix}" if self.prefix else prefix
        with _s3_errors("list uploads"):
            resp = await client.list_multipart_uploads(Bucket=self.bucket, Prefix=full_prefix)
        return [u["Key"] for u in resp.get("Uploads", [])]

    async def presigned_url(self, key: str, *, expires_in: int = 300) -> str | None:
        client = await self._s3()
        with _s3_errors("presign"):
            url: str = await client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self._key(key)},
                ExpiresIn=expires_in,
            )
        return url
