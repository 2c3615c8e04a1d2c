"""The sending side of a job's life: the Celery app and its entry modules (worker, beat),
submit, the outbox, resume and retry, the reconciler, the retrain schedule, local workers."""
