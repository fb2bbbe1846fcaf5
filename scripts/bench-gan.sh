#!/usr/bin/env bash
# The GAN's training steps and generation through tch (`synth bench`) next to the same work done
# the obvious way in PyTorch eager (crates/model/bench/eager.py), on this machine. Prints one
# markdown table.
#   bash scripts/bench-gan.sh                                   (builds synth first)
#   SYNTH=/path/to/synth GAN_BENCH_DEVICE=cuda bash scripts/bench-gan.sh
# Knobs: GAN_BENCH_THREADS (2), GAN_BENCH_ITERS (20), GAN_BENCH_BATCH (64), GAN_BENCH_DEVICE
# (cpu or cuda), GAN_BENCH_SIZE (32), GAN_BENCH_ROUNDS (3); SYNTH (the synth binary; default: cargo build --release);
# PYTHON (a python with torch; default /opt/synthsearch/venv/bin/python when present, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${GAN_BENCH_THREADS:-2}
ITERS=${GAN_BENCH_ITERS:-20}
BATCH=${GAN_BENCH_BATCH:-64}
DEVICE=${GAN_BENCH_DEVICE:-cpu}
SIZE=${GAN_BENCH_SIZE:-32}
ROUNDS=${GAN_BENCH_ROUNDS:-3}
case $DEVICE in
    cpu | cuda) ;;
    *) echo "bench-gan.sh: GAN_BENCH_DEVICE must be cpu or cuda, not '$DEVICE'" >&2; exit 2 ;;
esac
if [[ -z ${PYTHON:-} ]]; then
    if [[ -x /opt/synthsearch/venv/bin/python ]]; then
        PYTHON=/opt/synthsearch/venv/bin/python
    else
        PYTHON=python3
    fi
fi
if [[ -z ${SYNTH:-} ]]; then
    LIBTORCH_USE_PYTORCH=1 PATH=/opt/synthsearch/venv/bin:$PATH cargo build --release -p synthsearch-model >&2
    SYNTH=${CARGO_TARGET_DIR:-target}/release/synth
fi
[[ -x $SYNTH ]] || { echo "bench-gan.sh: no synth binary at $SYNTH" >&2; exit 1; }

# The two sides take turns, ROUNDS times, and each figure is the lowest of its rounds' medians: on a
# shared machine, load comes and goes for minutes, and whichever side ran in a busy spell would
# lose for that alone.
tch_out=
eager_out=
for round in $(seq "$ROUNDS"); do
    echo "round $round/$ROUNDS: synth bench ($DEVICE, $THREADS threads, ${ITERS} iterations, batch $BATCH)..." >&2
    tch_out+=$("$SYNTH" --threads "$THREADS" --device "$DEVICE" bench --size "$SIZE" --iters "$ITERS" --batch "$BATCH")$'\n'
    echo "round $round/$ROUNDS: eager.py..." >&2
    eager_out+=$("$PYTHON" crates/model/bench/eager.py --device "$DEVICE" --threads "$THREADS" \
        --size "$SIZE" --iters "$ITERS" --batch "$BATCH")$'\n'
done

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //' || true)
load=$(cut -d' ' -f1-3 /proc/loadavg)
gpu=
if [[ $DEVICE == cuda ]] && command -v nvidia-smi >/dev/null; then
    gpu="; GPU: $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 || true)"
fi
echo "machine: ${cpu:-unknown CPU}, $(nproc) cores, load average $load$gpu"
echo "device $DEVICE, $THREADS intra-op threads, images ${SIZE}x$SIZE, training batch $BATCH; medians of $ITERS timed training steps and of $((ITERS * 5)) generation calls, each timed on its own; the lowest of $ROUNDS alternating rounds"
# Each round repeats these lines: the first of each.
printf '%s\n' "$tch_out" | awk '/^machine: / && !seen++ { sub(/^machine: /, "tch (synth): "); print }'
printf '%s\n' "$eager_out" | awk '
    /^machine: / && !m++ { sub(/^machine: /, "PyTorch eager: "); print }
    /^parameters: / && !p++ { sub(/^parameters: /, "PyTorch eager parameters: "); print }'

echo
# Rows by their work label, in synth's order; the lowest of the rounds.
awk -F'|' '
    FNR == 1 { file++ }
    NF == 4 {
        label = $2; value = $3
        gsub(/^ +| +$/, "", label); gsub(/ /, "", value)
        if (label == "work" || label ~ /^-+$/) next
        if (file == 1) {
            if (!(label in tch)) order[++n] = label
            if (!(label in tch) || value + 0 < tch[label] + 0) tch[label] = value
        } else if (!(label in eager) || value + 0 < eager[label] + 0) eager[label] = value
    }
    END {
        print "| work | tch (synth) ms | PyTorch eager ms |"
        print "| --- | ---: | ---: |"
        for (i = 1; i <= n; i++) {
            l = order[i]
            print "| " l " | " tch[l] " | " ((l in eager) ? eager[l] : "n/a") " |"
        }
    }
' <(printf '%s\n' "$tch_out") <(printf '%s\n' "$eager_out")
