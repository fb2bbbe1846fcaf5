#!/usr/bin/env bash
# `make demo`: a generated catalog imported into the demo cluster, a model trained in the
# background worker with its progress on screen, the headline queries, and an HTML page of what the
# engine understood. Re-running it reuses the catalog and the trained model.
#   DEMO_PRODUCTS   products in the catalog (default 10000)
#   DEMO_MINUTES    the most minutes training may take on this machine (default 10)
#   DEMO_RETRAIN=1  train again even if a demo model exists
#   DEMO_CATALOG=photos  real product photos instead (Fashion-MNIST, Debian's dataset-fashion-mnist:
#                   3,000 of each split, DEMO_PHOTOS), in the database synthsearch_photos, trained from
#                   the tags kind, tone and pattern; the page is .synth/demo/photos.html
set -euo pipefail
cd "$(dirname "$0")/.."
PG_BIN=/usr/lib/postgresql/${PG_MAJOR:-15}/bin
port=${DEMO_PORT:-25329}
dir=${DEMO_DIR:-$PWD/.synth/demo}
products=${DEMO_PRODUCTS:-10000}
minutes=${DEMO_MINUTES:-10}
threads=$(nproc)
catalog=${DEMO_CATALOG:-generated}
case "$catalog" in
generated)
    db=synthsearch model=demo view=demo_catalog html=$dir/index.html queries=scripts/demo_queries.sql
    attributes='"colour", "material", "pattern", "sleeve", "neckline", "hem"'
    ;;
photos)
    db=synthsearch_photos model=photos view=photo_catalog html=$dir/photos.html queries=scripts/demo_photos_queries.sql
    attributes='"kind", "tone", "pattern"'
    ;;
*)
    echo "demo: DEMO_CATALOG is generated or photos, not \"$catalog\"" >&2
    exit 2
    ;;
esac
psql() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h localhost -p "$port" -U postgres -d "$db" "$@"; }
q() { psql -tA -c "$1"; }

if [ "$catalog" = photos ]; then
    "$PG_BIN/psql" -X -q -h localhost -p "$port" -U postgres -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 \
        || "$PG_BIN/createdb" -h localhost -p "$port" -U postgres "$db"
    photos=$dir/photos
    if [ ! -f "$photos/columns.json" ]; then
        if [ ! -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
            echo "demo: Fashion-MNIST is missing; make setup installs Debian's dataset-fashion-mnist" >&2
            exit 1
        fi
        echo "Writing ${DEMO_PHOTOS:-3000} photos of each split (Fashion-MNIST) with their tags and captions..."
        cargo build -q --release -p synthsearch-model --bin synth
        mkdir -p "$dir"
        "${CARGO_TARGET_DIR:-target}/release/synth" photos --out "$photos" --products "${DEMO_PHOTOS:-3000}" --seed 42
    fi
    # The server reads the folder (synth_import_fashioniq) as its own OS user.
    chmod -R a+rX "$photos"
    d=$photos
    while [ "$d" != / ]; do d=$(dirname "$d"); chmod a+x "$d" 2>/dev/null || true; done
    psql -v photos="$photos" -f scripts/demo_photos.sql
else
    psql -v products="$products" -f scripts/demo.sql
fi

# The model: the networks and recipe measured in BENCHMARKS.md ("Model"), at 32x32, with fewer
# steps (the catalog is small) and a time limit so the demo ends on a slow machine too. It trains
# as a shop would: from the catalog's attribute columns, without a pairs table. Stage 1 (the
# embedding space, where the wish loss and the attribute probes work) is cheap, so it gets most
# of the steps (BENCHMARKS.md, "Search quality as a shopper sees it"). A checkpoint holds the
# trainer's state (about 32 MB of WAL, most of it the text encoder's buckets and their Adam
# moments); the default checkpoint_seconds (300) keeps one or two in the demo's ten minutes.
# Retrained, the model has a new encoder: "force" activates it over the old one (the page's image
# index is built again below), so the page shows the model just trained, not the one before.
options=$(cat <<JSON
{"name": "$model", "activate": true, "force": true, "threads": $threads, "image_size": 32,
 "attributes": [$attributes],
 "encoder_steps": 6000, "gan_steps": 3000,
 "eval_queries": 300, "max_seconds": $((minutes * 60))}
JSON
)
job=$(q "SELECT job FROM synth_jobs WHERE model = '$model' AND state IN ('queued', 'running', 'cancelling') ORDER BY job DESC LIMIT 1")
trained=$(q "SELECT count(*) FROM synth_models WHERE name = '$model'")
if [ -z "$job" ] && { [ "$trained" = 0 ] || [ "${DEMO_RETRAIN:-0}" = 1 ]; }; then
    job=$(q "SELECT synth_train('$view', NULL, '$options')")
    echo
    echo "Training job $job started in a background worker: SELECT * FROM synth_jobs WHERE job = $job;"
fi
if [ -n "$job" ]; then
    last=""
    while :; do
        line=$(q "SELECT format('job %s %-9s step %s/%s (%s%%) %-7s %s steps/s, %s left  %s', job, state, step, total_steps,
                    coalesce(progress, 0), coalesce(stage, ''), coalesce(steps_per_second, 0), coalesce(time_left::text, '-'),
                    (SELECT string_agg(format('%s=%s', key, round(value::numeric, 3)), ' ' ORDER BY key)
                     FROM jsonb_each_text(losses)))
                  FROM synth_jobs WHERE job = $job")
        state=$(q "SELECT state FROM synth_jobs WHERE job = $job")
        [ "$line" != "$last" ] && echo "$line"
        last=$line
        case "$state" in
        succeeded) break ;;
        failed | cancelled)
            echo "training job $job $state: $(q "SELECT error FROM synth_jobs WHERE job = $job")" >&2
            exit 1
            ;;
        esac
        sleep 5
    done
    echo "The model's figures, held out (the test split: products no decision of training read;"
    echo "the validation split's are in synth_jobs.recall too): Recall@10 on held-out pairs, and wish"
    echo "precision@10 on the headline wishes beside its ceiling (the best page the split allows):"
    psql -c "SELECT m.key AS method, (m.value->>'10')::numeric AS recall_at_10,
                    (j.recall->'test'->'wishes'->'precision_at_10'->>m.key)::numeric AS wish_precision_at_10,
                    (j.recall->'test'->'wishes'->'unseen_words'->'precision_at_10'->>m.key)::numeric AS in_a_shoppers_words
             FROM synth_jobs j, jsonb_each(j.recall->'test'->'recall') m WHERE j.job = $job ORDER BY 1"
    psql -c "SELECT w->'ceiling_at_10'->>'with_image' AS ceiling_from_a_reference,
                    w->'ceiling_at_10'->>'text_only' AS ceiling_text_only,
                    w->'fidelity'->>'with_image' AS judge_reads_the_wish,
                    w->'fidelity'->>'text_only' AS judge_text_only
             FROM (SELECT recall->'test'->'wishes' AS w FROM synth_jobs WHERE job = $job) s"
    echo "What an independent judge (a classifier trained on held-out real photos) reads from the"
    echo "synthesized images, beside its own accuracy on real ones:"
    psql -c "SELECT a.key AS attribute, a.value->>'read' AS asked_value_read_in_synthesized,
                    a.value->>'judge_accuracy' AS judge_on_real_images
             FROM synth_jobs j, jsonb_each(j.recall->'test'->'wishes'->'fidelity'->'by_attribute') a
             WHERE j.job = $job ORDER BY 1"
fi

mkdir -p "$dir"
psql -v html="$html" -f "$queries"
echo
echo "The page of what the engine understood: $html"
