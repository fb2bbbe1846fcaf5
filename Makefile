# synthsearch: `make demo` and `make test` are the two commands a newcomer needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PG_MAJOR ?= 15
PG_CONFIG := /usr/lib/postgresql/$(PG_MAJOR)/bin/pg_config
VENV ?= /opt/synthsearch/venv
STATE := $(CURDIR)/.synth
DEMO_DIR := $(STATE)/demo
DEMO_PORT ?= 25329
# The port the demo cluster listens on: DEMO_PORT, or the next free one if that was taken when the
# cluster was made (scripts/cluster.sh).
demo_port = $$(bash scripts/cluster.sh port $(DEMO_DIR) $(DEMO_PORT))

# tch finds libtorch through the Python environment's torch.
export LIBTORCH_USE_PYTORCH := 1
export PATH := $(VENV)/bin:$(HOME)/.cargo/bin:$(PATH)
export PG_MAJOR

.PHONY: help setup test demo dsn stop bench install clean

help:
	@echo "make demo   a local cluster with the extension and a demo session (leaves it running)"
	@echo "make test   the whole test suite"
	@echo "make bench  the benchmarks"
	@echo "make dsn    connection string of the demo cluster; make stop stops it"

setup:
	@bash scripts/setup.sh

test: setup
	@bash scripts/test.sh

# Never `cargo pgrx install`: it rewrites synthsearch.so in place under running servers.
install: setup
	@bash scripts/install.sh

demo: install
	@bash scripts/cluster.sh start $(DEMO_DIR) $(DEMO_PORT) "shared_preload_libraries = 'synthsearch'"
	@psql -X -q "$$($(MAKE) -s dsn dbname=postgres)" -c "SELECT 1 FROM pg_database WHERE datname = 'synthsearch'" -tA | grep -q 1 \
		|| createdb -h localhost -p $(demo_port) -U postgres synthsearch
	@DEMO_PORT=$(demo_port) DEMO_DIR=$(DEMO_DIR) bash scripts/demo.sh
	@echo
	@echo "The demo cluster is running: psql \"\$$(make -s dsn)\"; make stop stops it."

dbname ?= synthsearch
dsn:
	@echo "host=localhost port=$(demo_port) user=postgres dbname=$(dbname)"

stop:
	@bash scripts/cluster.sh stop $(DEMO_DIR)

bench: install
	@bash scripts/bench.sh

clean: stop
	rm -rf $(STATE)
