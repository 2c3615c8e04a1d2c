"""A fuzz run against the OpenAPI description (schemathesis): every operation, with generated
valid and invalid input and the write token, answers without a 500, on PostgreSQL and Redis
with a model and a job that has rows. Bounded: a few dozen examples per operation."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from db import queries
from db.session import session_scope

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TOKEN = "fuzz-token-0123456789"
EXAMPLES = 25  # per operation and mode


@pytest.fixture
def api_schema(monkeypatch, postgres, redis_url, isolated_env, registered_baseline_model):
    from db.settings import reset_settings
    from happysad.web.app import create_app

    folder = isolated_env / "incoming"
    folder.mkdir(parents=True)
    with session_scope() as session:  # a job with a labelled row and an error row
        version = registered_baseline_model
        job_id = queries.create_job(session, str(folder), version, batch_size=2).id
        queries.record_batch(session, job_id, 0, [
            {"job_id": job_id, "uri": str(folder / "a.jpg"), "label": "happy",
             "confidence": 0.7, "probabilities": {"happy": 0.7, "sad": 0.3}, "error": None,
             "model_version": version, "worker_host": "fuzz"},
            {"job_id": job_id, "uri": str(folder / "b.jpg"), "label": None, "confidence": None,
             "probabilities": None, "error": "not a recognised image", "worker_host": "fuzz",
             "model_version": version}], "fuzz")
    monkeypatch.setenv("HAPPYSAD_API_TOKEN", TOKEN)
    reset_settings()
    return schemathesis.openapi.from_asgi("/openapi.json", create_app())


def test_no_operation_answers_500(api_schema):
    from hypothesis import given
    from hypothesis.errors import Unsatisfiable
    from schemathesis.generation import GenerationMode

    # Loaded in the test (schemathesis' fixture integration does not run on this pytest): each
    # operation gets valid and invalid (negative) input in turn.
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 14
    calls: dict[str, int] = {}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            def fuzz(case):
                calls[operation.label] = calls.get(operation.label, 0) + 1
                case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"},
                                       checks=[not_a_server_error])

            try:
                fuzz()
            except Unsatisfiable:
                # An operation with nothing to make invalid (no parameters, no body) has no
                # negative cases: its valid ones ran.
                assert mode == GenerationMode.NEGATIVE, operation.label
    assert set(calls) == {operation.label for operation in operations}
