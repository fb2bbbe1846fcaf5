#!/usr/bin/env bash
# Search quality under the honest protocol (BENCHMARKS.md, "Quality under the honest protocol").
# Each catalog is trained from nothing with one recipe for every catalog, two catalog seeds each
# (the demo's catalog also with seed 42, the one its defaults were chosen on), and evaluated as
# `synth eval` does: the validation and the test split apart, held-out products only, wish
# precision beside its ceiling, a shopper's words apart, the independent judge, and the ablation's
# head without an image. Then one table of the test split's figures (scripts/quality_table.py).
#
#   bash scripts/bench-quality.sh [OUT_DIR]
#   MINUTES (14: each run's limit), ENCODER_STEPS (3000), GAN_STEPS (1500), PARALLEL (2 runs at
#   once, one libtorch thread each), RUNS (a regular expression over the run names: all).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-.synth/bench-quality}
MINUTES=${MINUTES:-14}
ENC=${ENCODER_STEPS:-3000}
GAN=${GAN_STEPS:-1500}
PAR=${PARALLEL:-2}
RUNS=${RUNS:-.}
export LIBTORCH_USE_PYTORCH=1 PATH=/opt/synthsearch/venv/bin:$HOME/.cargo/bin:$PATH
cargo build -q --release -p synthsearch-model --bin synth
SYNTH=${CARGO_TARGET_DIR:-target}/release/synth
mkdir -p "$OUT"
FM=/usr/share/datasets/fashion-mnist
if [ ! -f "$FM/train-images-idx3-ubyte.gz" ]; then
    echo "bench-quality: Fashion-MNIST is missing ($FM); make setup installs dataset-fashion-mnist" >&2
    exit 1
fi
# Fashion-MNIST: 3,000 products of each split (train, val from the training file; test from
# t10k), drawn with the catalog seed.
for seed in 1 2; do
    [ -f "$OUT/photos-$seed/columns.json" ] || "$SYNTH" photos --out "$OUT/photos-$seed" --products 3000 --seed "$seed" >/dev/null
done
runs=(
    "demo-42|--products 10000 --catalog-seed 42 --pairs attributes"
    "demo-1001|--products 10000 --catalog-seed 1001 --pairs attributes"
    "varied-captions-1001|--products 10000 --catalog-seed 1001 --variation photo --captions-only"
    "varied-captions-1002|--products 10000 --catalog-seed 1002 --variation photo --captions-only"
    "photos-captions-1|--data $OUT/photos-1 --captions-only"
    "photos-captions-2|--data $OUT/photos-2 --captions-only"
    "photos-columns-1|--data $OUT/photos-1 --pairs attributes --catalog-seed 1"
    "photos-columns-2|--data $OUT/photos-2 --pairs attributes --catalog-seed 2"
)
run_one() {
    local name=${1%%|*} args=${1#*|}
    [ -f "$OUT/$name.json" ] && return 0
    # shellcheck disable=SC2086
    "$SYNTH" --threads 1 train $args --encoder-steps "$ENC" --gan-steps "$GAN" --minutes "$MINUTES" \
        --ablation-head --eval-queries 10000 --out "$OUT/$name.ckpt" --report-json "$OUT/$name.json" \
        >"$OUT/$name.log" 2>&1 \
        || { echo "bench-quality: $name failed, see $OUT/$name.log" >&2; return 1; }
    echo "bench-quality: $name done"
}
export -f run_one
export SYNTH OUT ENC GAN MINUTES
printf '%s\n' "${runs[@]}" | grep -E "^($RUNS)" | xargs -d '\n' -P "$PAR" -I{} bash -c 'run_one "$1"' _ {}
python3 scripts/quality_table.py "$OUT"
