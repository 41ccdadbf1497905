# The two commands of the README. Both are idempotent and do all set-up themselves.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv

.PHONY: run test test-containers lint setup rabbitmq bench clean demo-post

run: setup rabbitmq ## start the whole system in the foreground (Ctrl-C stops it)
	$(VENV)/bin/python -m tools.run

test: setup rabbitmq ## run the test suite against real RabbitMQ and a per-run mongod
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# The e2e and the short resilience suites with RabbitMQ and MongoDB in containers started
# by testcontainers (tests/containers/infra.py). Without DOCKER_HOST: through this project's
# podman, with the two images built locally first (docs/operations.md, "Containers").
test-containers: setup
	$(if $(DOCKER_HOST),,$(VENV)/bin/python -m tests.containers.podman rabbitmq mongo)
	TEST_INFRA=testcontainers $(VENV)/bin/python -m pytest tests/containers/test_infra.py tests/e2e \
	  tests/resilience $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .

setup: $(VENV)/.synced

# uv is installed into a private bootstrap venv, so nothing global is touched.
$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

rabbitmq:
	@scripts/ensure-rabbitmq.sh

clean:
	rm -rf $(VENV) $(TOOLS)

demo-post: ## create a scheduled post (in one hour) in the running sandbox's demo community
	@curl -sS -X POST localhost:8090/_sandbox/communities/1/posts -H 'Content-Type: application/json' \
	  -d "{\"text\": \"Hello from make demo-post\", \"publish_date\": $$(( $$(date +%s) + 3600 ))}"; echo

# Benchmarks against real local services (README, "Performance"): the table on stdout, the
# figures in bench/results/latest.json. QUICK=1: the < 1 min smoke version. BENCH_ARGS are
# passed on, e.g. BENCH_ARGS="--only gateway,burst" or "--private-broker".
bench: setup rabbitmq
	@bench/ensure-wrk.sh
	$(VENV)/bin/python -m bench $(if $(QUICK),--quick) $(BENCH_ARGS)

# Resilience scenarios (tests/resilience; README, "Reliability"): the services as real
# processes under faults. The short versions take about 4 min; LONG=1 runs the long ones.
# The broker-restart scenario stops and starts the RabbitMQ application (rabbitmqctl).
# RESILIENCE_LOG_DIR=dir keeps every process's output (and figures.jsonl) in dir/run-*.
.PHONY: resilience
resilience: setup rabbitmq
	$(VENV)/bin/python -m pytest tests/resilience $(if $(LONG),-m long) $(PYTEST_ARGS)
