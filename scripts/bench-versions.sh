#!/usr/bin/env bash
# PostgreSQL 15 beside 17: the same synthivf benchmark (scripts/bench-index.sh: load, exact scan,
# CREATE INDEX, recall@10 and queries/s at several nprobe) on this machine's 15 and on 17 in the
# Debian 13 root of `make test-17` (scripts/debian-root.sh), each with its release build. Prints
# the machine, then both runs' tables. As root.
#   bash scripts/bench-versions.sh          (SETS, NPROBES, SECONDS_PER_RUN as bench-index.sh takes them)
set -euo pipefail
cd "$(dirname "$0")/.."
root=${TRIXIE_ROOT:-/var/tmp/synthsearch-roots/trixie}
export SETS=${SETS:-100000x128} NPROBES=${NPROBES:-"1 4 16"} SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
export LIBTORCH_USE_PYTORCH=1 PATH=${SYNTHSEARCH_VENV:-/opt/synthsearch/venv}/bin:$HOME/.cargo/bin:$PATH

echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
bash scripts/debian-root.sh make trixie "$root"
PG_MAJOR=15 bash scripts/install.sh >/dev/null
echo
echo "## PostgreSQL $(/usr/lib/postgresql/15/bin/postgres --version | awk '{print $3}')"
PG_MAJOR=15 bash scripts/bench-index.sh
bash scripts/debian-root.sh run trixie "$root" \
    "PG_MAJOR=17 LIBTORCH_USE_PYTORCH=1 PATH=/opt/synthsearch/venv/bin:\$PATH bash scripts/setup.sh >/dev/null && PG_MAJOR=17 LIBTORCH_USE_PYTORCH=1 PATH=/opt/synthsearch/venv/bin:\$PATH bash scripts/install.sh >/dev/null \
     && echo && echo \"## PostgreSQL \$(/usr/lib/postgresql/17/bin/postgres --version | awk '{print \$3}')\" \
     && SETS='$SETS' NPROBES='$NPROBES' SECONDS_PER_RUN=$SECONDS_PER_RUN PG_MAJOR=17 bash scripts/bench-index.sh"
