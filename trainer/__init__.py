"""Training: storage, the one decode path, datasets, architectures, training, the version registry."""

import os

# TensorFlow prints several lines of C++ start-up chatter (CUDA probes on a CPU machine) unless
# told otherwise before it is imported; warnings and errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
