"""Security properties that need no server: JSON-only task messages, passwords masked wherever
a URL is shown, storage that refuses to read outside its source, model files loaded only when
intact and only in Keras safe mode. The same properties against real processes are in
tests/integration/test_hostile_files.py."""

import hashlib
import os
from pathlib import Path

import pytest

from db.settings import Settings, mask_url
from trainer.storage import BucketStorage, FolderStorage, Listing, StorageError


# --- task messages -------------------------------------------------------------------------

@pytest.mark.parametrize("broker_url", [None, "redis://127.0.0.1:6379/0"])
def test_tasks_are_json_only(broker_url, tmp_path):
    from scheduler.celery_app import celery_config

    config = celery_config(Settings(home=tmp_path, broker_url=broker_url))
    assert config["accept_content"] == ["json"]
    assert config["task_serializer"] == config["result_serializer"] == "json"


class _RunsCodeWhenUnpickled:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def test_a_pickle_message_is_refused_before_it_is_unpickled(tmp_path):
    from kombu.exceptions import ContentDisallowed
    from kombu.serialization import dumps, loads

    from scheduler.celery_app import celery_config

    accept = celery_config(Settings(home=tmp_path))["accept_content"]
    content_type, encoding, body = dumps(_RunsCodeWhenUnpickled(tmp_path / "ran"), "pickle")
    with pytest.raises(ContentDisallowed):
        loads(body, content_type, encoding, accept=accept)  # what the worker's consumer does
    assert not (tmp_path / "ran").exists()


# --- passwords in URLs ---------------------------------------------------------------------

@pytest.mark.parametrize("url, shown", [
    ("postgresql://happysad:pa55@db:5432/happysad", "postgresql://happysad:***@db:5432/happysad"),
    ("postgresql+psycopg://u:p%40ss@db/x", "postgresql+psycopg://u:***@db/x"),
    ("redis://:pa55@redis:6379/0", "redis://:***@redis:6379/0"),
    ("redis://user:pa@55@redis:6379/0", "redis://user:***@redis:6379/0"),  # '@' in password
    ("redis://redis:6379/0", "redis://redis:6379/0"),
    ("sqlite:////data/happysad.db", "sqlite:////data/happysad.db"),
    (None, None),
])
def test_passwords_in_urls_are_masked(url, shown):
    assert mask_url(url) == shown


def test_an_unreachable_broker_is_named_without_its_password(monkeypatch):
    from db.settings import get_settings, reset_settings
    from scheduler.submit import BrokerUnavailable, check_broker
    from scheduler.celery_app import sender_app

    monkeypatch.setenv("HAPPYSAD_BROKER_URL", "redis://:pa55word@127.0.0.1:1/0")  # nothing there
    reset_settings()
    with pytest.raises(BrokerUnavailable) as refused:
        check_broker(sender_app(), get_settings())
    assert "redis://:***@127.0.0.1:1/0" in str(refused.value)
    assert "pa55word" not in str(refused.value)


@pytest.mark.parametrize("url", [
    "postgresql://happysad:pa55word@127.0.0.1:1/happysad",  # nothing listens on port 1
    "mysql://happysad:pa55word@127.0.0.1/happysad",  # no driver installed
    "postgresql+nodriver://happysad:pa55word@127.0.0.1/happysad",
])
def test_database_errors_never_show_the_password(url, monkeypatch):
    from db.session import DatabaseUnavailable, get_engine
    from db.settings import reset_settings

    monkeypatch.setenv("HAPPYSAD_DATABASE_URL", url)
    reset_settings()
    with pytest.raises(DatabaseUnavailable) as raised:
        get_engine()
    assert "happysad:***@127.0.0.1" in str(raised.value) and "pa55word" not in str(raised.value)


# --- reading only inside the source --------------------------------------------------------

@pytest.fixture
def source_and_secret(tmp_path) -> tuple[Path, Path]:
    source = tmp_path / "incoming"
    source.mkdir()
    (source / "inside.jpg").write_bytes(b"inside")
    for folder in (tmp_path / "secret", tmp_path / "incoming-secret"):  # a prefix of the source
        folder.mkdir()
        (folder / "secret.jpg").write_bytes(b"secret")
    return source, tmp_path


@pytest.mark.parametrize("uri", [
    "{tmp}/secret/secret.jpg", "{tmp}/incoming/../secret/secret.jpg",
    "{tmp}/incoming-secret/secret.jpg", "file://{tmp}/secret/secret.jpg", "/etc/hostname",
])
def test_folder_storage_refuses_uris_outside_the_source(uri, source_and_secret):
    source, tmp = source_and_secret
    storage = FolderStorage(source)
    for read in (storage.read_bytes, lambda u: storage.read_head(u, 16)):
        with pytest.raises(StorageError, match="refusing to read outside the source"):
            read(uri.format(tmp=tmp))


def test_a_file_swapped_for_a_link_out_after_listing_is_refused(source_and_secret):
    source, tmp = source_and_secret
    storage = FolderStorage(source)
    listed = [listing.uri for listing in storage.iter_files()]
    os.remove(source / "inside.jpg")
    os.symlink(tmp / "secret" / "secret.jpg", source / "inside.jpg")
    with pytest.raises(StorageError, match="outside"):
        storage.read_bytes(listed[0])


def test_the_worker_records_refusals_instead_of_reading(source_and_secret):
    from worker.classify import read_one

    source, tmp = source_and_secret
    os.symlink(tmp / "secret" / "secret.jpg", source / "leads-out.jpg")
    uris = [str(source / "leads-out.jpg"), str(tmp / "secret" / "secret.jpg")]
    decoded, errors = zip(*(read_one(FolderStorage(source), uri, 16, 10_000) for uri in uris))
    assert decoded == (None, None)
    assert all(error.startswith("refusing to read outside the source") for error in errors)


def test_submit_never_sniffs_a_link_that_leads_out(source_and_secret):
    from trainer.formats import is_candidate_image

    source, tmp = source_and_secret
    os.mkfifo(tmp / "secret" / "trap")  # reading it would block: the test would hang
    os.symlink(tmp / "secret" / "trap", source / "trap")
    storage = FolderStorage(source)
    listing = next(item for item in storage.iter_files() if item.uri.endswith("/trap"))
    assert listing.problem and not is_candidate_image(storage, listing)
    named_like_an_image = Listing(str(source / "out.jpg"), "symbolic link that leads out")
    assert is_candidate_image(storage, named_like_an_image)  # a row, whose reading is refused


@pytest.mark.parametrize("uri", [
    "s3://photos/secret.jpg", "s3://photos/incoming-secret/a.jpg",
    "s3://photos/incoming/../secret/a.jpg", "s3://other/incoming/a.jpg",
])
def test_bucket_storage_refuses_keys_outside_the_prefix(uri):
    storage = BucketStorage("s3://photos/incoming")
    with pytest.raises(StorageError, match="refusing to read outside the source"):
        storage.read_bytes(uri)  # refused before any request is made


# --- model files ---------------------------------------------------------------------------

def model_row(path: Path, sha256: str | None = None):
    from db.tables import ModelVersion
    from trainer.formats import PREPROCESSING_VERSION

    return ModelVersion(version=7, path=str(path), preprocessing_version=PREPROCESSING_VERSION,
                        model_sha256=sha256 or hashlib.sha256(path.read_bytes()).hexdigest(),
                        class_names=["happy", "sad"], image_size=8)


def save_model(path: Path, with_lambda: bool) -> Path:
    import keras

    inputs = keras.Input((8, 8, 3))
    hidden = keras.layers.Lambda(lambda x: x * 2)(inputs) if with_lambda else inputs
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(hidden))
    keras.Model(inputs, outputs).save(path)
    return path


def test_a_tampered_model_file_is_refused_before_keras_reads_it(tmp_path):
    from trainer.model_store import ModelLoadError, load_model

    path = save_model(tmp_path / "model.keras", with_lambda=False)
    row = model_row(path)
    assert load_model(row, tmp_path / "cache") is not None  # intact: loads
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="does not match its recorded hash"):
        load_model(row, tmp_path / "cache")


def test_a_model_with_python_code_is_refused_by_safe_mode(tmp_path):
    """Even with a hash that matches (a model registered by someone hostile), a Lambda layer's
    Python code is never deserialized."""
    from trainer.model_store import ModelLoadError, load_model

    path = save_model(tmp_path / "model.keras", with_lambda=True)
    with pytest.raises(ModelLoadError, match="cannot be loaded: .*Lambda"):
        load_model(model_row(path), tmp_path / "cache")
