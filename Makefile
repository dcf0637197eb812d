# The two commands of the README: `make demo` and `make test`. Both set up
# everything first (scripts/setup.sh: Debian packages, Open vSwitch, venv).
VENV ?= .venv
PY := $(VENV)/bin/python
CSO := $(VENV)/bin/cso
PYTEST := $(PY) -m pytest

.PHONY: setup demo test unit integration lint bench clean

setup:
	@VENV=$(VENV) sh scripts/setup.sh

demo: setup
	$(CSO) demo

test: setup
	$(PYTEST) -q tests/unit
	$(MAKE) --no-print-directory lint
	$(PYTEST) -q tests/integration

unit: setup
	$(PYTEST) -q tests/unit

integration: setup
	$(PYTEST) -q tests/integration

lint: setup
	$(PY) -m pycodestyle cso cso_base sc_app ac_app topologies mininet tests

bench: setup
	$(CSO) bench pce

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
