# Two commands for students and CI:
#   make lab   - set up .venv/ (if missing or out of date) and open JupyterLab on exercises/
#   make test  - set up .venv/ (if needed) and run every test, notebooks included
#   make check-notebook NB=01 [ALT=1] - one notebook completely (instructors; see CONTRIBUTING.md)
# ORT=gpu (e.g. make lab ORT=gpu) installs onnxruntime-gpu instead of onnxruntime, for an
# NVIDIA GPU; the two builds overwrite each other, so the setup removes the other one first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
ORT    ?= cpu
ifeq ($(filter $(ORT),cpu gpu),)
$(error ORT=$(ORT) is not a build of ONNX Runtime: use ORT=cpu (the default) or ORT=gpu)
endif
ORT_DIST  := $(if $(filter gpu,$(ORT)),onnxruntime-gpu,onnxruntime)
ORT_OTHER := $(if $(filter gpu,$(ORT)),onnxruntime,onnxruntime-gpu)
# One stamp per build, so that switching ORT reinstalls.
STAMP  := $(VENV)/.installed$(if $(filter gpu,$(ORT)),-gpu,)
OTHER_STAMP := $(VENV)/.installed$(if $(filter gpu,$(ORT)),,-gpu)
# onnxruntime-web for the browser lesson, kept in the environment by `course_utils web-runtime`
# (its manifest is written last); fetched with npm's own client, checked against the pinned hash.
WEB_RUNTIME := $(VENV)/share/onnx-course/onnxruntime-web/manifest.json
PORT   ?= 8888
LAB_ARGS ?=
LAB_DIR ?= exercises
# Evaluated only when `make lab` runs (recursive variable).
KERNEL_ENCRYPTION = $(shell $(PY) -c "import zmq; print('auto' if zmq.has('curve') else 'disabled')")
# JupyterLab refuses to run as root unless told; CI containers run as root.
ROOT_ARG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: lab test check-notebook setup build check-build bench doctor clean

setup: $(STAMP) $(WEB_RUNTIME)

# Re-installs whenever pyproject.toml changes (new pins).
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	@# setuptools' note on editable installs is information only, not a problem to fix.
	@# Never both builds: remove the other one before installing this one.
	$(PY) -m pip uninstall --yes --quiet $(ORT_OTHER) 2>/dev/null || true
	PYTHONWARNINGS="ignore:Editable installation" $(PY) -m pip install --quiet --no-compile -e '.[dev,$(ORT)]'
	@# pip byte-compiles one file at a time (half of the install's minute and a half); compileall
	@# uses every core. Packages' own tests/ folders (35 of the 214 MB of .py) are never imported,
	@# so they are left out; the few other files it cannot compile are never imported either.
	$(PY) -m compileall -q -j 0 -x '/tests?/' $(VENV)/lib >/dev/null 2>&1 || true
	@rm -f $(OTHER_STAMP)
	@touch $(STAMP)

# Fetched once, again when the pin changes or the files are gone. Without npm it prints one
# line and goes on (each `make lab` repeats it until npm is installed); a tarball that is not
# the pinned one stops the setup. Once set up, nothing here reads the network.
$(WEB_RUNTIME): $(wildcard course_utils/web_runtime.py) | $(STAMP)
	$(PY) -m course_utils web-runtime --fetch

# lab-settings/overrides.json: defaults for this course's JupyterLab only (no news
# pop-up, nothing fetched from jupyter.org, long lines wrap); your own settings
# still win. Kernel traffic is encrypted (CurveZMQ) where pyzmq supports it.
lab: $(STAMP) $(WEB_RUNTIME)
	$(PY) -m course_utils doctor --no-smoke-test || true
	$(PY) -m jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.port=$(PORT) \
		--ServerApp.root_dir=$(LAB_DIR) --LabApp.app_settings_dir=$(CURDIR)/lab-settings \
		--KernelManager.transport_encryption=$(KERNEL_ENCRYPTION) $(ROOT_ARG) $(LAB_ARGS)

# Two workers (pytest-xdist); tests/conftest.py keeps each file, and the sandboxed grading
# batches together, on one worker, and hands out the longest work first. PyTorch's OpenMP
# threads sleep while they wait instead of spinning: with both cores busy, a spinning thread
# takes the CPU the other worker needs (the grader sets the same inside its sandboxes).
test: $(STAMP) $(WEB_RUNTIME)
	OMP_WAIT_POLICY=PASSIVE ONNX_COURSE_BROWSER=headless $(PY) -m pytest tests solutions --nbval -n 2 \
		--nbval-sanitize-with tests/nbval_sanitize.cfg \
		--nbval-cell-timeout=300 --durations=25

check-notebook: $(STAMP)
	@# One notebook completely: nbval on solutions/NN-*.ipynb, every reference answer through the
	@# grader's public and hidden checks (the top-level conftest.py), and its topic's check tests
	@# (the topic is the check module that declares NN's answers); ALT=1 also grades its
	@# alternative answers through the sandbox (10-60 s more).
	@topic=$$(grep -l 'register_answer("$(NB)\.' course_utils/exercise_checks/*.py 2>/dev/null | head -n 1); \
	if [ -z "$(NB)" ] || [ -z "$$topic" ] || [ -z "$$(ls solutions/$(NB)-*.ipynb 2>/dev/null)" ]; then \
		echo "make check-notebook NB=NN: give the number of a notebook in solutions/ (NB=$(NB) is none)"; exit 2; fi; \
	set -x; ALTERNATIVES_ONLY=$(NB) OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest solutions/$(NB)-*.ipynb \
		tests/test_checks_$$(basename $$topic) $(if $(ALT),tests/test_alternative_answers.py) --nbval -n 2 \
		--nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=300

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
