#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian machine, run as root by `make test` and `make demo`.
# Installs only what is missing: PostgreSQL PG_MAJOR (15 by default; 17 where Debian ships it) with headers, libclang, sudo, Fashion-MNIST (dataset-fashion-mnist), cargo-pgrx 0.18.0
# initialised against the system pg_config, and a Python environment with torch 2.11.0 (libtorch).
set -euo pipefail

PG_MAJOR=${PG_MAJOR:-15}
PGRX_VERSION=0.18.0
TORCH_VERSION=2.11.0
VENV=${SYNTHSEARCH_VENV:-/opt/synthsearch/venv}

log() { printf '[setup] %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Debian packages
pkgs=()
# dataset-fashion-mnist: Zalando's Fashion-MNIST (30 MB), the real product photos of `synth photos`,
# its tests and the demo.
for p in "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR" libclang-dev clang sudo python3-venv pkg-config libssl-dev dataset-fashion-mnist; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || pkgs+=("$p")
done
if [ ${#pkgs[@]} -gt 0 ]; then
    log "installing ${pkgs[*]}"
    as_root apt-get update -qq
    if ! apt-cache show "postgresql-server-dev-$PG_MAJOR" >/dev/null 2>&1; then
        . /etc/os-release
        echo "setup: this machine's Debian ($PRETTY_NAME) has no PostgreSQL $PG_MAJOR packages" \
            "(bookworm ships 15, trixie 17); for 17 on bookworm, make test-17 runs the suite in a trixie root" >&2
        exit 1
    fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi
# Debian's package starts a cluster of its own; we run our own clusters.
if [ -d /etc/postgresql/$PG_MAJOR/main ] && command -v pg_ctlcluster >/dev/null; then
    pg_ctlcluster "$PG_MAJOR" main stop >/dev/null 2>&1 || true
fi

# cargo-pgrx
if ! cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
    log "installing cargo-pgrx $PGRX_VERSION (takes about 10 minutes)"
    cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
fi
PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
if ! grep -q "pg$PG_MAJOR" "${PGRX_HOME:-$HOME/.pgrx}/config.toml" 2>/dev/null; then
    log "cargo pgrx init --pg$PG_MAJOR"
    cargo pgrx init "--pg$PG_MAJOR" "$PG_CONFIG"
fi

# libtorch from the torch wheel, outside /root so the postgres user can read it
if ! "$VENV/bin/python" -c "import torch,sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
    log "installing torch $TORCH_VERSION into $VENV"
    as_root mkdir -p "$(dirname "$VENV")"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "torch==$TORCH_VERSION"
fi
chmod -R a+rX "$(dirname "$VENV")" 2>/dev/null || true

# a non-root OS user for PostgreSQL (it refuses to run as root)
id postgres >/dev/null 2>&1 || as_root useradd --system --create-home postgres

log "ready"
