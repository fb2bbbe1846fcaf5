#!/usr/bin/env bash
# `make demo`: a generated catalog imported into the demo cluster, a model trained in the
# background worker with its progress on screen, the headline queries, and an HTML page of what the
# engine understood. Re-running it reuses the catalog and the trained model.
#   DEMO_PRODUCTS   products in the catalog (default 10000)
#   DEMO_MINUTES    the most minutes training may take on this machine (default 10)
#   DEMO_RETRAIN=1  train again even if a demo model exists
set -euo pipefail
cd "$(dirname "$0")/.."
PG_BIN=/usr/lib/postgresql/${PG_MAJOR:-15}/bin
port=${DEMO_PORT:-25329}
dir=${DEMO_DIR:-$PWD/.synth/demo}
products=${DEMO_PRODUCTS:-10000}
minutes=${DEMO_MINUTES:-10}
threads=$(nproc)
psql() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h localhost -p "$port" -U postgres -d synthsearch "$@"; }
q() { psql -tA -c "$1"; }

psql -v products="$products" -f scripts/demo.sql

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
{"name": "demo", "activate": true, "force": true, "threads": $threads, "image_size": 32,
 "attributes": ["colour", "material", "pattern", "sleeve", "neckline", "hem"],
 "encoder_steps": 6000, "gan_steps": 3000,
 "eval_queries": 300, "max_seconds": $((minutes * 60))}
JSON
)
job=$(q "SELECT job FROM synth_jobs WHERE model = 'demo' AND state IN ('queued', 'running', 'cancelling') ORDER BY job DESC LIMIT 1")
trained=$(q "SELECT count(*) FROM synth_models WHERE name = 'demo'")
if [ -z "$job" ] && { [ "$trained" = 0 ] || [ "${DEMO_RETRAIN:-0}" = 1 ]; }; then
    job=$(q "SELECT synth_train('demo_catalog', NULL, '$options')")
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
    echo "Recall@K on the held-out pairs (SynthTriplet GAN and the baselines):"
    psql -c "SELECT method, r.key::int AS k, r.value::numeric AS recall
             FROM synth_jobs j, jsonb_each(j.recall->'recall') m(method, ks), jsonb_each_text(m.ks) r
             WHERE j.job = $job ORDER BY method, k"
    echo "Wish precision@10 on the headline queries (the share of a page that honours the wish) and"
    echo "colour fidelity of the synthesized images:"
    psql -c "SELECT m.key AS method, m.value::numeric AS wish_precision_at_10
             FROM synth_jobs j, jsonb_each(j.recall->'wishes'->'precision_at_10') m WHERE j.job = $job ORDER BY 1"
    psql -c "SELECT recall->'wishes'->'colour_fidelity' AS colour_fidelity,
                    recall->'wishes'->'colour_fidelity_text_only' AS text_only,
                    recall->'wishes'->'colour_reading_on_catalog' AS reading_on_catalog_images
             FROM synth_jobs WHERE job = $job"
fi

mkdir -p "$dir"
html=$dir/index.html
psql -v html="$html" -f scripts/demo_queries.sql
echo
echo "The page of what the engine understood: $html"
