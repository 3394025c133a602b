# radar-extract: `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Airflow cannot share .venv (its pins fight ours): the DAG test runs in its own venv.
AIRFLOW_VENV := .venv-airflow
DEMO_URL ?= mysql+pymysql://root@127.0.0.1:3306/radar_demo
DEMO_SCALE ?= 1
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install airflow-venv demo extract test test-unit bench bench-migrate lint clean

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

demo: install ## Build the synthetic demo database (DEMO_SCALE=1) and extract it into ./data
	$(BIN)/python -m extractor.demo --url '$(DEMO_URL)' --scale $(DEMO_SCALE)
	RADAR_MYSQL_URL='$(DEMO_URL)' RADAR_DEST=./data $(BIN)/radar-extract extract $(ARGS)

extract: install ## Run an extraction with the environment's configuration (ARGS='--table store')
	$(BIN)/radar-extract extract $(ARGS)

test: install airflow-venv ## Run every test (needs MySQL/MariaDB at 127.0.0.1:3306 or RADAR_TEST_MYSQL_URL)
	$(BIN)/python -m pytest -q $(ARGS)

test-unit: install ## Run the tests that need no services
	$(BIN)/python -m pytest -q tests/unit $(ARGS)

bench: install ## Benchmark against `mariadb --quick` and plain pymysql (3M rows; not a test)
	$(BIN)/python bench/bench.py $(ARGS)

bench-migrate: install ## Time `migrate` of one 3M-row Airbyte-shaped partition (after `make bench`)
	$(BIN)/python bench/migrate.py $(ARGS)

lint: install ## ruff, mypy --strict, the import-layer contract, hadolint on the Dockerfile
	$(BIN)/ruff check extractor tests bench deploy
	$(BIN)/mypy extractor
	$(BIN)/lint-imports
	@if [ -x $(BIN)/hadolint ]; then $(BIN)/hadolint Dockerfile && echo "hadolint: Dockerfile ok"; \
	else echo "hadolint: not installed on this platform, Dockerfile not linted"; fi

clean: ## Remove .venv, .venv-airflow, ./data and caches
	rm -rf $(VENV) $(AIRFLOW_VENV) data build *.egg-info .pytest_cache .mypy_cache .ruff_cache
