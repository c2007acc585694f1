# Two commands for students and CI:
#   make lab   - set up .venv/ (if missing or out of date) and open JupyterLab on exercises/
#   make test  - set up .venv/ (if needed) and run every test, notebooks included
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?= 8888
LAB_ARGS ?=
# JupyterLab refuses to run as root unless told; CI containers run as root.
ROOT_ARG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: lab test setup build check-build bench doctor clean

setup: $(STAMP)

# Re-installs whenever pyproject.toml changes (new pins).
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

lab: $(STAMP)
	$(PY) -m course_utils doctor --no-smoke-test || true
	$(PY) -m jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.port=$(PORT) \
		--ServerApp.root_dir=exercises $(ROOT_ARG) $(LAB_ARGS)

test: $(STAMP)
	$(PY) -m pytest tests solutions --nbval \
		--nbval-sanitize-with tests/nbval_sanitize.cfg \
		--nbval-cell-timeout=300 --durations=25

build: $(STAMP)
	$(PY) -m course_utils build

check-build: $(STAMP)
	$(PY) -m course_utils build --check

bench: $(STAMP)
	$(PY) -m course_utils bench --preset full --json artifacts/bench-full.json

doctor: $(STAMP)
	$(PY) -m course_utils doctor

clean:
	rm -rf artifacts exercises/artifacts solutions/artifacts .pytest_cache
