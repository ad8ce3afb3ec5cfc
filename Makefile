# Omni: `make run` and `make test` set everything up from a fresh clone.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CUSTOMERS ?= 2000
SEED ?= 7
PORT ?= 8000
DATA_DIR ?= data/synthetic
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: setup browser run test test-fast lint bench bench-recommender bench-churn mlflow-ui clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]'
	touch $(STAMP)

setup: $(STAMP) browser

# The tablet page's browser tests drive Debian's Chromium: install it when missing and
# possible; otherwise those tests skip and say why.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ); \
		$$SUDO apt-get install -y -qq chromium >/dev/null 2>&1 || \
		{ $$SUDO apt-get update -qq >/dev/null 2>&1 && $$SUDO apt-get install -y -qq chromium >/dev/null 2>&1; } || \
		echo "Chromium could not be installed here: the tablet browser tests will skip"; }

# The demo's control group and experiment (the product's defaults have neither).
DEMO := OMNI_HOLDOUT_SHARE=0.2 OMNI_EXPERIMENTS_FILE=service/experiments/demo.toml

# The main job on the embedded default: synthetic data -> SQLite event store -> both
# models trained, registered in MLflow and promoted -> tonight's e-mail offers (a fifth of
# the customers held out, the rest split by offer policy) -> the synthetic customers
# answer them -> the report of what the offers added -> the API on localhost:$(PORT).
run: setup
	$(BIN)/omni generate --customers $(CUSTOMERS) --seed $(SEED) --out $(DATA_DIR)
	$(BIN)/omni ingest $(DATA_DIR)
	$(BIN)/omni stats
	$(BIN)/omni train recommender
	$(BIN)/omni promote recommender --alias champion
	$(BIN)/omni train churn
	$(BIN)/omni promote churn --alias champion --replay
	$(DEMO) $(BIN)/omni export offers --channel email --replay --output data/tonight-offers.csv
	$(DEMO) $(BIN)/omni simulate --replay
	$(DEMO) $(BIN)/omni report --replay --days 14 --experiment offer-policy --out reports/make-run
	$(DEMO) $(BIN)/omni serve --demo-keys --replay --port $(PORT)

# Lint and types first, then the suite. PostgreSQL tests run when the server answers;
# otherwise they skip and say why.
test: lint
	@if $(BIN)/python -c "import psycopg; psycopg.connect('$(subst +psycopg,,$(PG_URL))', connect_timeout=3).close()" 2>/dev/null; then \
		echo "PostgreSQL answers at $(PG_URL): store tests run on it too"; \
		OMNI_TEST_SPARK=required OMNI_TEST_POSTGRES_URL='$(PG_URL)' $(BIN)/pytest; \
	else \
		echo "PostgreSQL does not answer at $(PG_URL): its tests will skip"; \
		OMNI_TEST_SPARK=required $(BIN)/pytest; \
	fi

# The edit loop: lint, types and every test not marked slow (no browser, no end-to-end
# server, no pipeline training, no Spark), on SQLite only.
test-fast: lint
	$(BIN)/pytest -m "not slow and not postgres and not spark" -q

lint: setup
	$(BIN)/ruff check features models training service tests benchmarks
	$(BIN)/ruff format --check features models training service tests benchmarks
	$(BIN)/mypy

bench: setup
	$(BIN)/python benchmarks/ingest_rate.py

bench-recommender: setup
	$(BIN)/python benchmarks/recommender_quality.py

bench-churn: setup
	$(BIN)/python benchmarks/churn_quality.py

# The MLflow UI on the project's tracking store: http://127.0.0.1:5000
mlflow-ui: setup
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db --host 127.0.0.1 --port 5000

clean:
	rm -rf $(VENV) data
