# radar-extract: `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Airflow cannot share .venv (its pins fight ours): the DAG test runs in its own venv.
AIRFLOW_VENV := .venv-airflow
# The peers `make bench` compares with (polars, dlt) live in a venv of their own, never in .venv.
BENCH_VENV := .venv-bench
DEMO_URL ?= mysql+pymysql://root@127.0.0.1:3306/radar_demo
DEMO_SCALE ?= 1
ARGS ?=
# The test servers: `make test` runs the integration tests against each of SERVER
# (mariadb, mysql or both), one after the other; the unit and deploy tests run once, with
# the first. MYSQL_URL is what ../shared/mysql/start-mysql.sh prints last (`make mysql`).
SERVER ?= both
MARIADB_URL ?= mysql+pymysql://root@127.0.0.1:3306/
MYSQL_URL ?= mysql+pymysql://radar:radar@127.0.0.1:3307/
START_MYSQL ?= ../shared/mysql/start-mysql.sh

.DEFAULT_GOAL := help
.PHONY: help install airflow-venv bench-venv demo extract test test-mariadb test-mysql test-unit \
	mysql bench bench-migrate lint clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(BIN)/radar-extract: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/radar-extract ## Create .venv with the package and its development tools

$(AIRFLOW_VENV)/bin/airflow: deploy/airflow/requirements.txt deploy/airflow/constraints.txt
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/pip install --quiet -r deploy/airflow/requirements.txt \
		-c deploy/airflow/constraints.txt
	@touch $@

airflow-venv: $(AIRFLOW_VENV)/bin/airflow ## Create .venv-airflow (Airflow 3) for the DAG test

$(BENCH_VENV)/bin/python: bench/requirements-peers.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet -r bench/requirements-peers.txt
	@touch $@

bench-venv: $(BENCH_VENV)/bin/python ## Create .venv-bench with the peers the bench compares with

demo: install ## Build the synthetic demo database (DEMO_SCALE=1) and extract it into ./data
	$(BIN)/python -m extractor.demo --url '$(DEMO_URL)' --scale $(DEMO_SCALE)
	RADAR_MYSQL_URL='$(DEMO_URL)' RADAR_DEST=./data $(BIN)/radar-extract extract $(ARGS)

extract: install ## Run an extraction with the environment's configuration (ARGS='--table store')
	$(BIN)/radar-extract extract $(ARGS)

test: install airflow-venv ## Run every test, integration against MariaDB and MySQL (SERVER=mariadb|mysql|both)
	@case '$(SERVER)' in both) set -- mariadb mysql ;; mariadb|mysql) set -- '$(SERVER)' ;; \
	  *) echo "SERVER must be mariadb, mysql or both, not '$(SERVER)'" >&2; exit 2 ;; esac; \
	paths=tests; failed=; cov=; \
	for server in "$$@"; do \
	  if [ $$server = mysql ]; then url='$(MYSQL_URL)'; else url='$(MARIADB_URL)'; fi; \
	  echo "== $$paths against $$server ($$url)"; \
	  RADAR_TEST_MYSQL_URL="$$url" $(BIN)/python -m pytest -q --cov=extractor --cov-report= $$cov \
	    $$paths $(ARGS) || failed="$$failed $$server"; \
	  paths=tests/integration; cov=--cov-append; \
	done; \
	echo "== coverage of extractor, every pass (the test process, not spawned workers):" \
	  "$$($(BIN)/coverage report --format=total)%"; \
	if [ -n "$$failed" ]; then echo "== tests failed against:$$failed" >&2; exit 1; fi

test-mariadb: ## Run every test against MariaDB only (make test SERVER=mariadb)
	@$(MAKE) --no-print-directory test SERVER=mariadb

test-mysql: ## Run every test against MySQL only (make test SERVER=mysql)
	@$(MAKE) --no-print-directory test SERVER=mysql

mysql: ## Start the test MySQL at 127.0.0.1:3307 (../shared/mysql/start-mysql.sh, needs root)
	bash $(START_MYSQL)

test-unit: install ## Run the tests that need no services
	$(BIN)/python -m pytest -q tests/unit $(ARGS)

bench: install bench-venv ## Benchmark against the CLI, plain pymysql, polars, dlt (SERVERS=mariadb,mysql)
	$(BIN)/python bench/bench.py --peers-python $(BENCH_VENV)/bin/python \
		$(if $(SERVERS),--servers $(SERVERS)) $(ARGS)

bench-migrate: install ## Time `migrate` of one 3M-row Airbyte-shaped partition (after `make bench`)
	$(BIN)/python bench/migrate.py $(ARGS)

lint: install ## ruff check and format --check, mypy --strict (extractor, tests), import layers, hadolint
	$(BIN)/ruff check extractor tests bench deploy
	$(BIN)/ruff format --check extractor tests bench deploy
	$(BIN)/mypy extractor tests
	$(BIN)/lint-imports
	@if [ -x $(BIN)/hadolint ]; then $(BIN)/hadolint Dockerfile && echo "hadolint: Dockerfile ok"; \
	else echo "hadolint: not installed on this platform, Dockerfile not linted"; fi

clean: ## Remove .venv, .venv-airflow, .venv-bench, ./data and caches
	rm -rf $(VENV) $(AIRFLOW_VENV) $(BENCH_VENV) data build *.egg-info .pytest_cache .mypy_cache \
		.ruff_cache .coverage
