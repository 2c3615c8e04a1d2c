"""TensorFlow's C++ start-up lines stay out of the project's output, unless the import fails."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def import_fake_tensorflow(tmp_path: Path, body: str, **env) -> subprocess.CompletedProcess:
    """Import a stand-in `tensorflow` that writes to descriptor 2 as the real one's C++ does."""
    package = tmp_path / "fake" / "tensorflow"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("import os\nos.write(2, b'C++ chatter\\n')\n" + body)
    script = textwrap.dedent("""
        from db.settings import get_settings
        from trainer.tensorflow_startup import quiet_tensorflow_startup
        quiet_tensorflow_startup(get_settings().log_level)
        import tensorflow
        print("imported")
    """)
    environment = {**os.environ, **env,
                   "PYTHONPATH": os.pathsep.join([str(tmp_path / "fake"), str(ROOT)])}
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=environment, timeout=60)


def test_the_first_import_drops_what_tensorflow_writes_to_descriptor_2(tmp_path):
    result = import_fake_tensorflow(tmp_path, "")
    assert result.stdout == "imported\n" and result.stderr == ""


def test_a_failed_import_shows_what_tensorflow_wrote(tmp_path):
    result = import_fake_tensorflow(tmp_path, "raise ImportError('no libcudart')")
    assert result.returncode != 0
    assert "C++ chatter" in result.stderr and "no libcudart" in result.stderr


def test_debug_log_level_shows_tensorflow_s_own_lines(tmp_path):
    result = import_fake_tensorflow(tmp_path, "", HAPPYSAD_LOG_LEVEL="DEBUG")
    assert result.returncode == 0 and "C++ chatter" in result.stderr


def test_the_retracing_warning_of_training_s_graphs_is_dropped_and_others_kept():
    import logging

    from trainer.tensorflow_startup import _retracing_by_design

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("tensorflow", logging.WARNING, __file__, 1, message, (), None)

    assert not _retracing_by_design(record(
        "5 out of the last 11 calls to <function f> triggered tf.function retracing."))
    assert _retracing_by_design(record("Could not load dynamic library"))
