"""The web app and HTTP API (`happysad serve`): thin, like the CLI, over the same packages."""
