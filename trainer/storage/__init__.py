"""One storage interface, two implementations: a local folder and an S3 bucket.

Chosen by the URI: `/path` or `file:///path` is a folder, `s3://bucket/prefix` a bucket. A
storage object is rooted at its source and refuses to read anything outside it, so a worker can
never be steered to files the user did not submit. `base` holds the interface, `folder` and
`bucket` the implementations (the shape of httpx's `_transports/`).
"""

from trainer.storage.base import Listing, Storage, StorageError
from trainer.storage.bucket import BucketStorage, s3_filesystem
from trainer.storage.folder import FolderStorage


def is_bucket_uri(uri: str) -> bool:
    return uri.startswith("s3://")


def open_storage(uri: str) -> Storage:
    """The storage for a source URI: a bucket for s3://, a folder for anything else."""
    if is_bucket_uri(uri):
        return BucketStorage(uri)
    if uri.startswith("file://"):
        uri = uri.removeprefix("file://")
    if "://" in uri:
        raise StorageError(f"unsupported source {uri!r}: use a folder path, file:// or s3://")
    return FolderStorage(uri)


__all__ = ["BucketStorage", "FolderStorage", "Listing", "Storage", "StorageError",
           "is_bucket_uri", "open_storage", "s3_filesystem"]
