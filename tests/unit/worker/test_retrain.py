"""The retrain run on SQLite: cron slots, skip when unchanged, one run per slot and at a time,
the champion-against-challenger gate, and the promotion history."""

import dataclasses
import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from db import queries
from db.locks import TRAINING_LOCK, held_lock
from db.session import get_engine, session_scope
from db.settings import get_settings, reset_settings
from tests.helpers.commands import happysad
from worker.task_names import CLASSIFY_BATCH_TASK, RETRAIN_TASK
from worker.retrain import cron_slot, previous_fire_time
from worker.retrain import run_retrain as run_retrain_with

UTC = ZoneInfo("UTC")


def at(text: str, zone: str = "UTC") -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))


@pytest.mark.parametrize("cron, timezone, now, expected", [
    ("0 2 * * *", "UTC", at("2024-03-05 10:17"), at("2024-03-05 02:00")),
    ("0 2 * * *", "UTC", at("2024-03-05 01:59:59"), at("2024-03-04 02:00")),
    ("0 2 * * *", "UTC", at("2024-03-05 02:00:30"), at("2024-03-05 02:00")),
    ("*/15 * * * *", "UTC", at("2024-03-05 10:17:45"), at("2024-03-05 10:15")),
    ("* * * * *", "UTC", at("2024-03-05 10:17:45"), at("2024-03-05 10:17")),
    ("0 0 1 * *", "UTC", at("2024-03-15 08:00"), at("2024-03-01 00:00")),
    ("0 0 29 2 *", "UTC", at("2025-06-01 00:00"), at("2024-02-29 00:00")),
    # Celery's day-of-week: 0 and 7 are Sunday, 1 is Monday; 2024-03-06 is a Wednesday.
    ("30 8 * * 1", "Europe/Paris", at("2024-03-06 12:00", "Europe/Paris"),
     at("2024-03-04 08:30", "Europe/Paris")),
    # Midnight in New York is 05:00 UTC: 02:00 New York time has not come yet that day.
    ("0 2 * * *", "America/New_York", at("2024-01-10 05:00"),
     at("2024-01-09 02:00", "America/New_York")),
])
def test_previous_fire_time(cron, timezone, now, expected):
    fired = previous_fire_time(cron, timezone, now)
    assert fired == expected
    assert fired.utcoffset() == expected.utcoffset()  # read in the schedule's time zone


def test_a_cron_that_never_fires_is_an_error():
    with pytest.raises(ValueError, match="never"):
        previous_fire_time("0 0 31 2 *", "UTC", at("2024-03-05 10:17"))


def test_every_moment_of_a_slot_names_the_same_slot():
    first = cron_slot("0 2 * * *", "UTC", at("2024-03-05 02:00:00.2"))
    assert first == cron_slot("0 2 * * *", "UTC", at("2024-03-05 23:59")) \
        == "cron-2024-03-05T02:00:00+00:00"
    assert cron_slot("0 2 * * *", "UTC", at("2024-03-06 02:00")) != first


def test_beat_stamps_the_slot_on_the_retrain_message(monkeypatch):
    from scheduler.beat import stamp_slot

    monkeypatch.setenv("HAPPYSAD_RETRAIN_CRON", "0 2 * * *")
    reset_settings()
    body = ((), {"force": False}, {})
    before = cron_slot("0 2 * * *", "UTC")
    stamp_slot(body=body, headers={"task": RETRAIN_TASK})
    assert body[1]["slot"] in {before, cron_slot("0 2 * * *", "UTC")}
    manual = ((), {"slot": "manual-1"}, {})
    stamp_slot(body=manual, headers={"task": RETRAIN_TASK})
    other = ((), {}, {})
    stamp_slot(body=other, headers={"task": CLASSIFY_BATCH_TASK})
    assert manual[1] == {"slot": "manual-1"} and other[1] == {}


@pytest.fixture
def train_data(sample_folder, monkeypatch) -> str:
    monkeypatch.setenv("HAPPYSAD_TRAIN_DATA", str(sample_folder))
    reset_settings()
    return str(sample_folder)


def run_retrain(slot: str, force: bool = False):
    """The retrain as its task runs it: with the process's settings and transactions."""
    return run_retrain_with(slot=slot, force=force, settings=get_settings(),
                            sessions=session_scope)


def runs_by_slot() -> dict[str, tuple[str, str | None]]:
    with session_scope() as session:
        return {run.slot: (run.status, run.reason) for run in queries.list_retrain_runs(session)}


def test_unchanged_data_is_skipped_and_forced_retrains(train_data, registered_model, tiny_training):
    skipped = run_retrain(slot="nightly")
    assert skipped.status == "skipped" and "unchanged" in skipped.reason
    assert skipped.dataset_fingerprint == tiny_training.data.fingerprint
    assert skipped.model_version is None and skipped.finished_at >= skipped.started_at

    forced = run_retrain(slot="forced", force=True)  # real training, on production's recipe
    assert forced.status == "done" and forced.model_version == registered_model + 1
    assert f"production v{registered_model}" in forced.reason
    with session_scope() as session:
        new = queries.get_model_version(session, forced.model_version)
        production = queries.production_model_version(session).version
        assert (new.params["epochs"], new.image_size) == (30, 32)  # the production's recipe
    assert forced.promoted == (production == forced.model_version)


def test_a_duplicate_delivery_is_a_no_op(train_data, registered_baseline_model):
    first = run_retrain(slot="cron-2024-03-05T02:00:00+00:00")
    assert run_retrain(slot="cron-2024-03-05T02:00:00+00:00") is None
    assert runs_by_slot() == {first.slot: (first.status, first.reason)}


def test_one_run_at_a_time_and_a_crashed_run_never_blocks(train_data, registered_baseline_model):
    with held_lock(get_engine(), TRAINING_LOCK, wait=False) as held:  # as if another worker were training now
        assert held
        busy = run_retrain(slot="busy")
    assert busy.status == "skipped" and "another retrain is running" in busy.reason

    with session_scope() as session:  # runs whose worker died mid-training: rows left running
        queries.claim_retrain_slot(session, "crashed", train_data)
        queries.claim_retrain_slot(session, "crashed-earlier", train_data)
    assert run_retrain(slot="crashed") is None  # its redelivery: recorded, not rerun
    assert runs_by_slot()["crashed"][0] == "failed"
    assert runs_by_slot()["crashed-earlier"][0] == "running"
    assert run_retrain(slot="next").status == "skipped"  # unchanged data: not blocked
    assert runs_by_slot()["crashed-earlier"] == (
        "failed", "the run stopped without an outcome (its worker died); one run per slot: "
        "not rerun")


def score_on_same_test_images(version: int, result) -> float:
    from trainer.promotion import evaluate_version_on

    with session_scope() as session:
        row = queries.get_model_version(session, version)
        return evaluate_version_on(row, result, get_settings().home_folder("cache"))["f1"]


def test_the_gate_refuses_a_worse_challenger(train_data, registered_model, tiny_training,
                                              monkeypatch):
    monkeypatch.setenv("HAPPYSAD_PROMOTION_METRIC", "f1")
    reset_settings()
    champion = score_on_same_test_images(registered_model, tiny_training)
    # The challenger scores lower on its test split, the very images the gate scores the
    # champion on: deterministic, whatever the tiny model learnt.
    worse = dataclasses.replace(tiny_training,
                                metrics=tiny_training.metrics | {"f1": champion - 0.25})
    monkeypatch.setattr("trainer.train.train", lambda source, params, **_options: worse)
    run = run_retrain(slot="gate", force=True)
    assert run.status == "done" and run.model_version == registered_model + 1
    assert not run.promoted
    assert run.reason == (f"f1 {champion - 0.25:.4f} vs production v{registered_model} "
                          f"{champion:.4f} on the same {len(tiny_training.split.test)} test "
                          "images (margin +0.0000): kept production")
    with session_scope() as session:
        assert queries.production_model_version(session).version == registered_model
        assert len(queries.promotion_history(session)) == 1


def test_history_shows_promotions_and_rollbacks(train_data, registered_model, tiny_training,
                                                monkeypatch):
    monkeypatch.setattr("trainer.train.train", lambda source, params, **_options: tiny_training)
    equal = run_retrain(slot="equal", force=True)  # as good as production: promoted
    assert equal.promoted and "promoted" in equal.reason
    monkeypatch.setenv("HAPPYSAD_PROMOTION_MARGIN", "0.1")
    reset_settings()
    refused = run_retrain(slot="margin", force=True)  # equal is not 0.1 better: kept
    assert not refused.promoted and "margin +0.1000" in refused.reason
    happysad("models", "promote", str(registered_model), "--reason", "v2 mislabels night photos")

    history = json.loads(happysad("models", "history", "--json").stdout)
    assert [(h["version"], h["previous_version"], h["kind"]) for h in history] == [
        (registered_model, None, "manual"), (equal.model_version, registered_model, "auto"),
        (registered_model, equal.model_version, "rollback")]
    assert history[1]["reason"] == equal.reason
    assert history[2]["reason"] == "v2 mislabels night photos"
    assert all(h["at"] for h in history)
    table = happysad("models", "history").stdout
    assert "rollback" in table and "auto" in table
