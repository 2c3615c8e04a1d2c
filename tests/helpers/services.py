"""The machine's services for the tests: skipped when missing, or a failure when CI=true."""

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def unavailable(what: str, error: Exception):
    message = f"{what} not reachable: {error}"
    if IN_CI:
        pytest.fail(message + " (CI=true: services are required)", pytrace=False)
    pytest.skip(message)
