"""Training: storage, the one decode path, datasets, architectures, training, the version registry."""
