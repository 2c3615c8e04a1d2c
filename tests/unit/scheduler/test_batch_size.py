"""The batch size is validated on every path, flag and setting alike, with a sane maximum:
`--batch-size 0` used to become 64 silently, and 1,000,000,000 made one batch of the source."""

import os

import pytest

from db.settings import MAX_BATCH_SIZE, Settings, get_settings, reset_settings
from scheduler.submit import SubmitError, checked_batch_size
from tests.helpers.commands import happysad
from tests.helpers.commands import assert_one_line_error


@pytest.mark.parametrize("size", [0, -1, MAX_BATCH_SIZE + 1, 1_000_000_000])
def test_a_batch_size_out_of_range_is_refused(size):
    with pytest.raises(SubmitError, match=f"between 1 and {MAX_BATCH_SIZE} \\(got {size}\\)"):
        checked_batch_size(size, 64)


def test_the_flag_wins_and_the_setting_is_the_default(monkeypatch):
    assert checked_batch_size(1, 64) == 1
    assert checked_batch_size(MAX_BATCH_SIZE, 64) == MAX_BATCH_SIZE
    monkeypatch.setenv("HAPPYSAD_BATCH_SIZE", "32")
    reset_settings()
    default = get_settings().batch_size  # as submit_source passes it
    assert checked_batch_size(None, default) == 32 and checked_batch_size(7, default) == 7


@pytest.mark.parametrize("value", ["0", "-3", str(MAX_BATCH_SIZE + 1), "1000000000"])
def test_the_setting_is_held_to_the_same_range(value, monkeypatch):
    monkeypatch.setenv("HAPPYSAD_BATCH_SIZE", value)
    with pytest.raises(ValueError, match="batch_size"):
        Settings()


@pytest.mark.slow
def test_submit_says_so_in_one_line(tmp_path):
    folder = tmp_path / "incoming"
    folder.mkdir()
    for size in ("0", "1000000000"):
        assert_one_line_error(happysad("submit", str(folder), "--batch-size", size, check=False),
                              f"--batch-size must be between 1 and {MAX_BATCH_SIZE} (got {size})")
    env = dict(os.environ, HAPPYSAD_BATCH_SIZE="0")
    assert_one_line_error(happysad("submit", str(folder), env=env, check=False),
                          "invalid HAPPYSAD_BATCH_SIZE='0'", "greater than or equal to 1")
