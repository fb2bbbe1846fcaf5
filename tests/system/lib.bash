# Sourced by every system test (scripts/test.sh runs tests/system/*.sh against the regress
# cluster, REGRESS_PORT and REGRESS_DIR in the environment). Sets PG_BIN, conn and work (a
# temporary folder, removed on exit after the commands in on_exit_do), and the helpers psql, as_pg
# and fail (which names the test).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PG_BIN=/usr/lib/postgresql/${PG_MAJOR:-15}/bin
conn=(-h localhost -p "$REGRESS_PORT" -U postgres)
test_name=$(basename "$0" .sh)

psql() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "${conn[@]}" "$@"; }
as_pg() { if [ "$(id -un)" = postgres ]; then "$@"; else sudo -u postgres -- "$@"; fi; }
fail() { echo "$test_name: $*" >&2; exit 1; }

work=$(mktemp -d)
on_exit_do=()
run_on_exit() {
    local c
    for c in "${on_exit_do[@]}"; do eval "$c" || true; done
    rm -rf "$work"
}
trap run_on_exit EXIT

# A TorchScript image encoder (a small convolution with `channels` channels, 16-dim output,
# seeded) saved at `path`, written with the project's torch.
torchscript_encoder() {
    local path=$1 channels=$2 python=/opt/synthsearch/venv/bin/python
    [ -x "$python" ] || python=python3
    "$python" -c "
import torch, torch.nn as nn
torch.manual_seed(0)
m = nn.Sequential(nn.Conv2d(3, $channels, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear($channels, 16))
torch.jit.script(m).save('$path')"
}
