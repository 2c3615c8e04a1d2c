"""Rows written straight through the queries, for tests that need a job without workers."""

from db import queries
from db.session import session_scope
from db.tables import ModelVersion


def add_version(session, version: int) -> None:
    session.add(ModelVersion(version=version, path=f"/m/{version}", model_sha256="0" * 64,
                             architecture="baseline", class_names=["happy", "sad"], image_size=32,
                             preprocessing_version=1, dataset_source="/d",
                             dataset_fingerprint="f" * 64, metrics={"accuracy": 1.0}, params={}))


def rows(job_id: int, uris: list[str]) -> list[dict]:
    return [{"job_id": job_id, "uri": uri, "label": "happy", "confidence": 0.9,
             "probabilities": {"happy": 0.9, "sad": 0.1}, "error": None, "model_version": 1,
             "worker_host": "test"} for uri in uris]


def make_job(class_names: list[str], predictions: list[tuple[str, dict | None]],
             source: str = "/photos", version: int | None = None,
             familiarity: dict[str, float] | None = None) -> tuple[int, dict[str, int]]:
    """A finished job whose rows are (name, probabilities), None for an unreadable image, on
    a model version made for it (or `version`); returns its id and each name's prediction id.
    `familiarity` gives some names' familiarity (the others have none, as from older models)."""
    with session_scope() as session:
        if version is None:
            version = queries.next_model_version(session)
            session.add(ModelVersion(
                version=version, path=f"/m/{version}", model_sha256="0" * 64,
                architecture="baseline", class_names=class_names, image_size=32,
                preprocessing_version=1, dataset_source="/d", dataset_fingerprint="f" * 64,
                metrics={}, params={}))
            session.flush()
        job_id = queries.create_job(session, source, version, batch_size=len(predictions)).id
        rows = []
        for name, probabilities in predictions:
            label = max(probabilities, key=probabilities.get) if probabilities else None
            rows.append({"job_id": job_id, "uri": f"{source}/{name}", "label": label,
                         "confidence": probabilities[label] if label else None,
                         "probabilities": probabilities,
                         "error": None if probabilities else "not an image",
                         "familiarity": (familiarity or {}).get(name),
                         "model_version": version, "worker_host": "test"})
        queries.record_batch(session, job_id, 0, rows, "test")
        queries.seal_job(session, job_id, len(rows), 1, 0)
        queries.finish_job(session, job_id)
        ids = {p.uri.rsplit("/", 1)[-1]: p.id for p in queries.iter_predictions(session, job_id)}
    return job_id, ids
