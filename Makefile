# diemcau: `make demo` runs the hub on the Kon Tum 2023 example with simulated halls (SPEED=10 times real
# time); `make cluster-demo` runs the same day on a local cluster (three nats-servers, three hub nodes);
# `make test` passes every test.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTHON ?= python3
SPEED  ?= 10
# Test processes: most tests wait on sockets, browsers and timeouts, so three share two cores well.
TEST_WORKERS ?= 3

.PHONY: setup system-deps demo cluster-demo test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,bench]'
	touch $@

system-deps:
	bash scripts/system-deps.sh

demo: setup
	mkdir -p var
	rm -f var/demo.db var/demo.db-wal var/demo.db-shm var/demo-links.tsv var/demo-access.html
	$(VENV)/bin/diemcau serve --config config/kon-tum-2023.toml --db var/demo.db --simulate --speed $(SPEED)

cluster-demo: setup
	rm -rf var/cluster
	$(VENV)/bin/diemcau cluster --config config/kon-tum-2023.toml --dir var/cluster --simulate --speed $(SPEED)

test: setup system-deps
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

bench: setup
	$(PY) -m bench

clean:
	rm -rf $(VENV) var test-artifacts .pytest_cache
