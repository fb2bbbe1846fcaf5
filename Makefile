# synthsearch: `make demo` and `make test` are the two commands a newcomer needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PG_MAJOR ?= 15
PG_CONFIG := /usr/lib/postgresql/$(PG_MAJOR)/bin/pg_config
VENV ?= /opt/synthsearch/venv
STATE := $(CURDIR)/.synth
# A cluster's data belongs to one major version: the demo of another than 15 has its own folder.
DEMO_DIR := $(STATE)/demo$(if $(filter-out 15,$(PG_MAJOR)),-$(PG_MAJOR))
DEMO_PORT ?= 25329
# The port the demo cluster listens on: DEMO_PORT, or the next free one if that was taken when the
# cluster was made (scripts/cluster.sh).
demo_port = $$(bash scripts/cluster.sh port $(DEMO_DIR) $(DEMO_PORT))

# tch finds libtorch through the Python environment's torch.
export LIBTORCH_USE_PYTORCH := 1
export PATH := $(VENV)/bin:$(HOME)/.cargo/bin:$(PATH)
export PG_MAJOR

.PHONY: help setup test test-17 demo dsn stop bench install clean

help:
	@echo "make demo   a local cluster with the extension and a demo session (leaves it running)"
	@echo "make test   the whole test suite"
	@echo "make test-17  the suite on PostgreSQL 17 in a Debian 13 root, and a catalog moved from 15 to 17"
	@echo "make bench  the benchmarks"
	@echo "make dsn    connection string of the demo cluster; make stop stops it"

setup:
	@bash scripts/setup.sh

test: setup
	@bash scripts/test.sh

# PostgreSQL 17 on a machine whose Debian has none (bookworm ships 15): the whole suite in a
# Debian 13 (trixie) root made with debootstrap (scripts/debian-root.sh), then a catalog dumped
# from this machine's 15 and restored into 17 there (tests/major/dump_15_to_17.sh). On a machine
# that has PostgreSQL 17 itself, `make test PG_MAJOR=17` is the suite.
TRIXIE_ROOT ?= /var/tmp/synthsearch-roots/trixie
test-17:
	@bash scripts/debian-root.sh make trixie $(TRIXIE_ROOT)
	@if [ -n "$${CITUS_TARBALL:-}" ]; then mkdir -p $(STATE)/vendor && cp "$$CITUS_TARBALL" $(STATE)/vendor/; fi
	@CITUS_TARBALL_IN_ROOT=$${CITUS_TARBALL:+/src/.synth/vendor/$$(basename "$$CITUS_TARBALL")} \
		bash scripts/debian-root.sh run trixie $(TRIXIE_ROOT) "make test PG_MAJOR=17"
	@bash tests/major/dump_15_to_17.sh $(TRIXIE_ROOT)

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
