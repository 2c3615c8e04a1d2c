"""Celery workers: the app every process uses, thin tasks, batched classification, job reports."""
