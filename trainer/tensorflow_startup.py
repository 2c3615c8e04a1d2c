"""Keep TensorFlow's start-up chatter out of the project's output.

While `import tensorflow` runs, its C++ libraries write straight to file descriptor 2 ("All log
messages before absl::InitializeLog() is called...", "oneDNN custom operations are on", "Could
not find cuda drivers"), before any Python logging exists; TF_CPP_MIN_LOG_LEVEL no longer
reaches those lines with TensorFlow 2.21, and they break the training progress bar. So once
`quiet_tensorflow_startup()` has run, the first import of TensorFlow in the process (direct, or
through Keras) runs with descriptor 2 pointed at a temporary file: the lines are dropped when
the import succeeds and printed when it fails. TF_CPP_MIN_LOG_LEVEL=3 silences what TensorFlow
logs later (the CUDA probe on first use), and a filter drops the warning that training's one
graph per fitted part is "retracing". HAPPYSAD_LOG_LEVEL=DEBUG shows all of it.

Entry points call it with their log level (the CLI, the worker's parent before it forks);
importing this module does nothing.
"""

import importlib.abc
import importlib.machinery
import logging
import os
import sys
import tempfile
from contextlib import contextmanager
from types import SimpleNamespace


def quiet_tensorflow_startup(log_level: str) -> None:
    """Install the quiet first import of TensorFlow, unless it is imported already or the log
    level (HAPPYSAD_LOG_LEVEL) is DEBUG, which asks to see everything."""
    if log_level.upper() == "DEBUG":
        return
    tensorflow_log = logging.getLogger("tensorflow")
    if _retracing_by_design not in tensorflow_log.filters:
        tensorflow_log.addFilter(_retracing_by_design)
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if not any(isinstance(finder, _QuietTensorFlowFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())


def _retracing_by_design(record: logging.LogRecord) -> bool:
    """Drops TensorFlow's "N out of the last M calls to <function ...> triggered tf.function
    retracing" warning: training makes one graph per part of the model it fits
    (trainer.transfer.tensor_runner), each traced once, which that heuristic counts as
    retracing of one function."""
    return "triggered tf.function retracing" not in record.getMessage()


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` as usual, and wraps its loader in one that runs the import quietly."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader, finder=self)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader, finder: _QuietTensorFlowFinder):
        self.loader, self.finder = loader, finder

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        if self.finder in sys.meta_path:  # the first import only: later ones print as usual
            sys.meta_path.remove(self.finder)
        with _descriptor_2_captured() as captured:
            try:
                self.loader.exec_module(module)
            except BaseException:
                captured.failed = True
                raise


@contextmanager
def _descriptor_2_captured():
    """Point descriptor 2 at a temporary file for the block; replay the file if it failed."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        state = SimpleNamespace(failed=False)
        try:
            yield state
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if state.failed:
                capture.seek(0)
                sys.stderr.write(capture.read().decode(errors="replace"))
                sys.stderr.flush()
