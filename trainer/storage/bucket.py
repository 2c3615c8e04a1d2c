"""An S3 prefix as storage (AWS, MinIO, moto) through s3fs; nothing outside the prefix is read."""

import os
from collections.abc import Iterator

from trainer.storage.base import Listing, StorageError, StoredReads


_filesystems: dict[tuple, object] = {}


def s3_filesystem():
    """An s3fs filesystem for this process, pointed at HAPPYSAD_S3_ENDPOINT_URL if set.

    Credentials, and the endpoint when that is not set (AWS_ENDPOINT_URL), come from the
    standard AWS variables, which botocore reads itself. Made per process: s3fs runs an event loop
    in a thread, which does not survive a fork.
    """
    import s3fs

    from db.settings import get_settings

    endpoint = get_settings().s3_endpoint_url
    key = (os.getpid(), endpoint)
    if key not in _filesystems:
        client_kwargs = {"endpoint_url": endpoint} if endpoint else {}
        _filesystems[key] = s3fs.S3FileSystem(skip_instance_cache=True, client_kwargs=client_kwargs)
    return _filesystems[key]


class BucketStorage(StoredReads):
    """Objects under an S3 prefix (AWS, MinIO, moto): s3://bucket/prefix."""

    def __init__(self, uri: str):
        self.root = uri.rstrip("/")
        self._key_root = self.root.removeprefix("s3://")

    @property
    def _fs(self):
        return s3_filesystem()

    def exists(self) -> bool:
        try:
            return self._fs.exists(self._key_root) and self._fs.isdir(self._key_root)
        except (OSError, PermissionError) as error:
            raise StorageError(f"cannot reach {self.root}: {error}") from None

    def join(self, relative_path: str) -> str:
        return f"{self.root}/{relative_path}"

    page_size = 1000  # keys per ListObjectsV2 call (S3's own maximum)

    def iter_files(self) -> Iterator[Listing]:
        """Every object under the prefix, a page at a time in S3's own (key) order: memory
        does not grow with the bucket (listing it all first, as s3fs's find does, would)."""
        if not self.exists():
            raise StorageError(f"source bucket prefix not found: {self.root}")
        bucket, _, prefix = self._key_root.partition("/")
        token = None
        while True:
            page = self._list_page(bucket, prefix.rstrip("/") + "/" if prefix else "", token)
            for item in page.get("Contents", []):
                if not item["Key"].endswith("/"):  # a "folder" placeholder object
                    yield Listing(f"s3://{bucket}/{item['Key']}")
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    def _list_page(self, bucket: str, prefix: str, token: str | None) -> dict:
        kwargs = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": self.page_size}
        if token:
            kwargs["ContinuationToken"] = token
        return self._fs.call_s3("list_objects_v2", **kwargs)

    def _checked(self, uri: str) -> str:
        key = uri.removeprefix("s3://")
        if not key.startswith(self._key_root + "/") or "/../" in key:
            raise StorageError(f"refusing to read outside the source {self.root}: {uri}")
        return key

    def read_bytes(self, uri: str) -> bytes:
        return self._fs.cat_file(self._checked(uri))

    def read_head(self, uri: str, size: int) -> bytes:
        return self._fs.cat_file(self._checked(uri), start=0, end=size)

    def write_bytes(self, relative_path: str, data: bytes) -> str:
        uri = self.join(relative_path)
        self._fs.pipe_file(uri.removeprefix("s3://"), data)
        return uri
