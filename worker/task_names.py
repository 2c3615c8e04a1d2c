"""Task and queue names, named once: senders (scheduler, CLI, beat, the outbox) send by these
names without importing the tasks, so they never load TensorFlow; and without importing the
Celery app either, whose worker signals import them back."""

CLASSIFY_BATCH_TASK = "happysad.classify_batch"
FINISH_JOB_TASK = "happysad.finish_job"
RETRAIN_TASK = "happysad.retrain"
LABELLING_QUEUE = "labelling"  # batches of a job: every worker
TRAINING_QUEUE = "training"  # retrains: a worker with the memory and time to train
ALL_QUEUES = f"{LABELLING_QUEUE},{TRAINING_QUEUE}"
