"""The `happysad` command line: thin, it calls scheduler, worker, trainer and db."""
