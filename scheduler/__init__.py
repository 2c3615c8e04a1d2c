"""Submitting work: scan a source into a job and its batches; the retrain schedule (beat)."""
