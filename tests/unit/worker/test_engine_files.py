"""A version's OpenVINO IR: made once at registration beside model.keras, its hashes in the
version's row; a worker runs it, and falls back to TensorFlow with one log line when the IR is
missing or damaged (model.keras itself is never touched)."""

import json
import logging
from pathlib import Path

import pytest

from trainer.conversion import OPENVINO_FILES


def loaded_engine(version: int):
    from db.session import session_scope
    from db.settings import get_settings, reset_settings
    from worker.classify import ModelCache

    reset_settings()
    return ModelCache(get_settings()).get(version, session_scope).infer


@pytest.fixture
def version_folder(registered_model) -> Path:
    from db import queries
    from db.session import session_scope

    with session_scope() as session:
        row = queries.get_model_version(session, registered_model)
        hashes = row.params["engines"]["openvino"]["files"]
    folder = Path(row.path).parent
    assert sorted(hashes) == sorted(OPENVINO_FILES)
    assert all((folder / name).is_file() for name in OPENVINO_FILES)
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["engines"]["openvino"]["files"] == hashes
    assert not metadata["engines"]["openvino"]["reduced_precision"]["bf16"]["passed"] or \
        metadata["engines"]["openvino"]["reduced_precision"]["bf16"]["label_agreement"] >= 0.995
    return folder


def test_registration_converts_and_a_worker_runs_the_conversion(registered_model, version_folder,
                                                                monkeypatch):
    monkeypatch.setenv("HAPPYSAD_ENGINE", "openvino")
    engine = loaded_engine(registered_model)
    # fp32, or bf16 on a CPU with bf16 arithmetic where the version's reduced-precision check
    # passed at registration and it is faster: OpenVINO either way, never TensorFlow.
    assert engine.name in ("openvino", "openvino-bf16"), engine.note
    assert "parity" in engine.note


@pytest.mark.parametrize("damage", ["bin corrupted", "xml missing"])
def test_a_damaged_conversion_falls_back_to_tensorflow(registered_model, version_folder,
                                                       monkeypatch, caplog, damage):
    model_bytes = (version_folder / "model.keras").read_bytes()
    if damage == "bin corrupted":
        weights = bytearray((version_folder / OPENVINO_FILES[1]).read_bytes())
        weights[len(weights) // 2] ^= 0xFF
        (version_folder / OPENVINO_FILES[1]).write_bytes(bytes(weights))
    else:
        (version_folder / OPENVINO_FILES[0]).unlink()
    for choice in ("auto", "openvino"):
        monkeypatch.setenv("HAPPYSAD_ENGINE", choice)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="worker.engine"):
            engine = loaded_engine(registered_model)
        assert engine.name == "tensorflow"
        lines = [record for record in caplog.records if record.name == "worker.engine"]
        assert len(lines) == 1 and lines[0].levelno == logging.WARNING
        why = "does not match its recorded hash" if damage == "bin corrupted" else "missing"
        assert why in lines[0].getMessage() and f"v{registered_model}" in lines[0].getMessage()
    assert (version_folder / "model.keras").read_bytes() == model_bytes
