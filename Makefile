# The two commands a new user needs:
#   make quickstart   create .venv, install, run the whole pipeline on the bundled COCO sample
#   make test         create .venv if missing, run the test suite but its slow proofs (<= 5 min)
#   make test-all     the whole suite, the slow proofs too (what CI runs)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: quickstart test test-all venv bench clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

quickstart: $(STAMP)
	$(PY) -m keras_openpose.quickstart

test: $(STAMP)
	$(PY) -m pytest -q -n 2 -m "not slow" tests

test-all: $(STAMP)
	$(PY) -m pytest -q -n 2 tests

bench: $(STAMP)
	$(PY) bench/decode.py
	$(PY) bench/data_pipeline.py

clean:
	rm -rf runs/quickstart .pytest_cache
