"""Waiting for a condition with a generous deadline: about liveness, never about speed."""

import time


def wait_until(condition, what: str, timeout: float = 120, poll: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}")
