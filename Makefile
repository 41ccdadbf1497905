# The two commands of the README. Both are idempotent and do all set-up themselves.
SHELL := /bin/bash
# Any python3 bootstraps uv (below); uv then finds the Python the project runs on.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv

.PHONY: run test test-unit test-containers lint setup setup-run setup-bench rabbitmq bench clean demo-post

run: setup-run rabbitmq ## start the whole system in the foreground (Ctrl-C stops it)
	$(VENV)/bin/python -m tools.run

test: setup rabbitmq ## run the test suite against real RabbitMQ and a per-run mongod
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# The tests not marked integration (tests/conftest.py): no broker, no database, no process.
test-unit: setup
	$(VENV)/bin/python -m pytest -m "not integration" $(PYTEST_ARGS)

# The e2e and the short resilience suites with RabbitMQ and MongoDB in containers started
# by testcontainers (tests/containers/infra.py). Without DOCKER_HOST: through this project's
# podman, with the two images built locally first (docs/operations.md, "Containers").
test-containers: setup
	$(if $(DOCKER_HOST),,$(VENV)/bin/python -m tests.containers.podman rabbitmq mongo)
	TEST_INFRA=testcontainers $(VENV)/bin/python -m pytest tests/containers/test_infra.py tests/e2e \
	  tests/resilience $(PYTEST_ARGS)

lint: setup ## ruff and mypy (strict; mypy reads all the code, so everything is installed)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .

# The dependency groups of pyproject.toml each target needs. `setup` is everything (uv's
# default group `dev`): the default test run covers every part, and mypy reads all code.
# The narrower syncs are --inexact: they add what they need and remove nothing.
setup: $(VENV)/.synced
setup-run: $(VENV)/.synced-run
setup-bench: $(VENV)/.synced-bench

# uv is installed into a private bootstrap venv, so nothing global is touched.
$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# The Python the project runs on is requires-python's. uv looks for one (PATH, pyenv, its
# own installs; UV_PYTHON=/path/to/python picks one) and, where it may download, installs
# one; otherwise one line says what is needed.
REQUIRES_PYTHON := $(shell sed -n 's/^requires-python *= *"\(.*\)"/\1/p' pyproject.toml)
define ensure_python
	@$(UV) python find --quiet "$${UV_PYTHON:-$(REQUIRES_PYTHON)}" >/dev/null 2>&1 \
	  || $(UV) python install --quiet '$(REQUIRES_PYTHON)' 2>/dev/null \
	  || { echo "make: needs Python $(REQUIRES_PYTHON) (pyproject.toml), found none and could not download one: install Python 3.11 (python.org, your package manager, or pyenv install 3.11) or set UV_PYTHON=/path/to/python3.11" >&2; exit 1; }
endef

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(ensure_python)
	$(UV) sync --frozen
	touch $@

$(VENV)/.synced-run: $(UV) pyproject.toml uv.lock
	$(ensure_python)
	$(UV) sync --frozen --inexact --no-default-groups --group mongod
	touch $@

$(VENV)/.synced-bench: $(UV) pyproject.toml uv.lock
	$(ensure_python)
	$(UV) sync --frozen --inexact --no-default-groups --group bench
	touch $@

rabbitmq:
	@scripts/ensure-rabbitmq.sh

clean:
	rm -rf $(VENV) $(TOOLS)

demo-post: ## create a scheduled post (in one hour) in the running sandbox's demo community
	@curl -sS -X POST localhost:8090/_sandbox/communities/1/posts -H 'Content-Type: application/json' \
	  -d "{\"text\": \"Hello from make demo-post\", \"publish_date\": $$(( $$(date +%s) + 3600 ))}"; echo

# Benchmarks against real local services (docs/performance.md): the table on stdout, the
# figures in bench/results/latest.json. QUICK=1: the < 1 min smoke version. BENCH_ARGS are
# passed on, e.g. BENCH_ARGS="--only gateway,burst" or "--private-broker".
bench: setup-bench rabbitmq
	@bench/ensure-wrk.sh
	$(VENV)/bin/python -m bench $(if $(QUICK),--quick) $(BENCH_ARGS)

# Resilience scenarios (tests/resilience; docs/reliability.md): the services as real
# processes under faults. The short versions take about 10 min; LONG=1 runs the long ones.
# The broker-restart scenario stops and starts the RabbitMQ application (rabbitmqctl); the
# failover scenarios start their own 3-member replica set and 3-node RabbitMQ cluster.
# RESILIENCE_LOG_DIR=dir keeps every process's output (and figures.jsonl) in dir/run-*.
.PHONY: resilience
resilience: setup rabbitmq
	$(VENV)/bin/python -m pytest tests/resilience $(if $(LONG),-m long) $(PYTEST_ARGS)
