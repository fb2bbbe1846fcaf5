#!/usr/bin/env bash
# Real product photos end to end: Fashion-MNIST (Debian's dataset-fashion-mnist) written by
# `synth photos`, imported with its tags, a tiny model trained in the background worker from the
# tag columns, and the worker's figures checked against `synth eval` on the same folder: the same
# protocol on the same held-out products gives the same wish precision (within 0.05, the bar of
# the honest-measurement issue). The seed's other real path runs on the same photos
# from the command line: a TorchScript image encoder and fastText-format word vectors.
source "$(dirname "$0")/lib.bash"
db=photos_e2e
q() { psql -d $db -tA -c "$1"; }
export LIBTORCH_USE_PYTORCH=1 PATH=/opt/synthsearch/venv/bin:$HOME/.cargo/bin:$PATH
[ -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] \
    || fail "Fashion-MNIST is missing: make setup installs dataset-fashion-mnist"
synth=${CARGO_TARGET_DIR:-target}/debug/synth
[ -x "$synth" ] || cargo build -q -p synthsearch-model --bin synth

# 150 photos of each split.
"$synth" photos --out "$work/photos" --products 150 --seed 3 >"$work/photos.out" 2>&1 \
    || { cat "$work/photos.out"; fail "synth photos failed"; }
chmod -R a+rX "$work"

psql -d postgres -q -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
on_exit_do+=("psql -d postgres -c 'DROP DATABASE IF EXISTS $db WITH (FORCE)' >/dev/null")
{
psql -d $db -q <<SQL
SET client_min_messages = warning;
CREATE EXTENSION synthsearch;
SELECT * FROM synth_import_fashioniq('$work/photos', 'photos', 'photo_pairs');
CREATE VIEW photo_catalog AS
SELECT id, category, split, img, attributes->>'kind' AS kind, attributes->>'tone' AS tone,
       attributes->>'pattern' AS pattern FROM photos;
SQL
} >/dev/null
[ "$(q "SELECT count(*) FILTER (WHERE split = 'test') = 150 AND bool_and(attributes ?& ARRAY['kind', 'tone', 'pattern']) FROM photos")" = t ] \
    || fail "the photos were not imported with their tags"
opts='{"name": "photos", "image_size": 16, "embed_dim": 16, "encoder_width": 4, "generator_width": 4, "batch": 8,
       "encoder": {"text": {"buckets": 1024, "dim": 16}, "compose_hidden": 16}, "generator": {"cond_dim": 16},
       "attributes": ["kind", "tone", "pattern"], "encoder_steps": 30, "gan_steps": 10, "eval_every": 0,
       "eval_queries": 0, "judge_steps": 0, "threads": 1}'
job=$(q "SELECT synth_train('photo_catalog', NULL, '$opts')")
for ((i = 0; i < 900; i++)); do
    state=$(q "SELECT state FROM synth_jobs WHERE job = $job")
    case "$state" in succeeded | failed | cancelled) break ;; esac
    sleep 0.2
done
[ "$state" = succeeded ] || fail "job $job $state: $(q "SELECT error FROM synth_jobs WHERE job = $job")"
q "SELECT recall FROM synth_jobs WHERE job = $job" >"$work/worker.json"
psql -d $db -tA -c "SELECT encode(synth_model_export('photos'), 'hex')" \
    | python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.stdin.read().strip()))' >"$work/photos.ckpt"
"$synth" --threads 1 eval --model "$work/photos.ckpt" --data "$work/photos" --pairs attributes --catalog-seed 42 \
    --no-judge --json "$work/cli.json" >"$work/eval.out" 2>&1 || { cat "$work/eval.out"; fail "synth eval failed"; }
python3 - "$work/worker.json" "$work/cli.json" <<'PY' || fail "the worker's figures are not synth eval's"
import json, sys
worker, cli = (json.load(open(p)) for p in sys.argv[1:3])
checked, largest = 0, 0.0
for split, w in (("val", worker), ("test", worker.get("test"))):
    c = cli[split]
    assert w["wishes"]["split"] == c["wishes"]["split"] == split, (w["wishes"]["split"], split)
    assert w["wishes"]["gallery"] == c["wishes"]["gallery"], "different galleries"
    assert w["wishes"]["gallery"] == 150, w["wishes"]["gallery"]
    for m, p in c["wishes"]["precision_at_10"].items():
        q = w["wishes"]["precision_at_10"][m]
        assert abs(p - q) <= 0.05, f"{split} {m}: worker {q}, synth eval {p}"
        checked += 1
        largest = max(largest, abs(p - q))
    for k in ("with_image", "text_only"):
        assert w["wishes"]["ceiling_at_10"][k] == c["wishes"]["ceiling_at_10"][k]
assert checked >= 12, checked
print(f"photos: {checked} wish precisions of the worker and of synth eval differ by at most {largest:.4f}")
PY

# The pretrained-encoder path on the same photos: a TorchScript image encoder and word vectors
# (a .vec file of the captions' words; no pretrained weights exist offline, so these are made here).
torchscript_encoder "$work/enc.pt" 8
python3 - "$work" <<'PY'
import glob, json, random, re, sys
words = set()
for f in glob.glob(sys.argv[1] + "/photos/captions/*.json"):
    for r in json.load(open(f)):
        for c in r["captions"]:
            words.update(re.findall(r"[a-z0-9]+", c.lower()))
random.seed(0)
with open(sys.argv[1] + "/words.vec", "w") as out:
    out.write(f"{len(words)} 8\n")
    for w in sorted(words):
        out.write(w + " " + " ".join(f"{random.gauss(0, 1):.4f}" for _ in range(8)) + "\n")
PY
"$synth" --threads 1 train --data "$work/photos" --captions-only --torchscript "$work/enc.pt" \
    --word-vectors "$work/words.vec" --size 16 --embed-dim 16 --generator-width 4 --critic-width 4 --batch 8 \
    --encoder-steps 3 --gan-steps 3 --eval-queries 20 --out "$work/script.ckpt" >"$work/script.out" 2>&1 \
    || { tail -20 "$work/script.out"; fail "training with a TorchScript encoder and word vectors on the photos failed"; }
grep -q "## test split" "$work/script.out" || fail "the pretrained-path run reported no test split"
echo "photos: imported, trained in the worker from the tags, its figures are synth eval's; the TorchScript and word-vector path trains on the photos"
