"""Pretrained backbones: weights read offline from installed packages, rebuilt as Keras models."""
