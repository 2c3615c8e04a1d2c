"""What runs a task: thin Celery tasks, batched classification, the engine, finishing a job
and its report, the scheduled retrain."""
