#!/usr/bin/env bash
# Fuzzing every SQL function that takes image bytes, arrays or sizes, bounded in time for CI, in
# synthsearch.mode = server and backend: bad input is an ERROR with a fitting SQLSTATE (22P03 an
# invalid image, 54000 over a limit, 22023 a bad parameter, 22000 bad data, ...), never a crash,
# an internal error (XX000) or a hang, and the postmaster never restarts.
#
# Inputs are made deterministically (fixed seeds) by tests/system/fuzz_inputs.py: valid PNG (every
# colour type and depth, interlaced), JPEG (baseline 4:4:4, 4:2:0 with restart markers, 4:2:2,
# grey) and WebP (lossless, extended) images and PNGs the extension made, then variants: cut at
# many lengths, bytes flipped (for PNG also with every CRC fixed, so the decoder reads what was
# flipped), headers that claim extreme sizes (IHDR, SOF, VP8L, VP8X, VP8), bad chunks and
# segments, decompression bombs, wrong magic, zero bytes; model checkpoints cut, flipped, with
# their JSON header's numbers made extreme and their tensor archives corrupted (checksums fixed);
# text and binary (COPY ... FORMAT binary) input of the embedding and synthquery types; raw
# values (a bytea reinterpreted) with flipped bytes. SQL cases add arrays (empty, NULLs, over the
# documented maxima, multidimensional, other lower bounds), embeddings of wrong dimensions, NaN and
# infinities, 100000 dimensions in text, walk points at their extremes, extreme model arguments,
# synth_generate_catalog, synth_model_create and synth_train options out of range, index options
# and settings, byte strings at and over the 32 MiB limit, and the strip of one 8192x4097 PNG and
# 255 of 1x8192 whose canvas would take 51 GB.
#
# Each input runs through a PL/pgSQL wrapper that catches the error and records its SQLSTATE, a
# batch of them per connection; a batch that loses its connection (a crash) is run again one input
# a connection to name the input. Functions that never use a model (synth_image_strip, the types'
# input, synth_model_import, the knobs) run in the first mode only. At the end: no lost
# connection, no SQLSTATE outside what each function may raise, the expected SQLSTATE where one is
# certain, the same postmaster start time and checkpointer, and no "terminated by signal",
# "server process ... was terminated" or PANIC in the server log written meanwhile.
#   FUZZ_BATCH (default 120): inputs a connection. FUZZ_BUDGET (default 400): seconds after which the
#   remaining batches are skipped (said in the output, not a failure: a CI guard). FUZZ_KEEP=1 keeps
#   the database (fuzz_results has every call). FUZZ_EXTRA_SQL: SQL run after the cases are made
#   (to add one: SELECT fuzz_case('types', 'label', 'SELECT ...')).
source "$(dirname "$0")/lib.bash"
db=fuzz
batch_size=${FUZZ_BATCH:-120}
budget=${FUZZ_BUDGET:-400}
py=/usr/bin/python3
[ -x "$py" ] || py=python3
started=$(date +%s)
q() { psql -d $db -tA -c "$1"; }

log=$REGRESS_DIR/server.log
log_size() { stat -c %s "$log" 2>/dev/null || as_pg stat -c %s "$log" 2>/dev/null || echo 0; }
log_since() { if [ -r "$log" ]; then tail -c +$(($1 + 1)) "$log"; else as_pg tail -c +$(($1 + 1)) "$log"; fi; }
log0=$(log_size)
postmaster0=$(psql -d postgres -tA -c "SELECT pg_postmaster_start_time()")
checkpointer0=$(psql -d postgres -tA -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'")

if [ "$(psql -d postgres -tA -c 'SHOW shared_preload_libraries')" = synthsearch ]; then
    modes=(server backend)
else
    modes=(backend)
    echo "fuzz: the cluster does not preload synthsearch: backend mode only"
fi
first_mode=${modes[0]}

# Files the server reads (the binary COPY inputs) must be readable by its OS user.
chmod 755 "$work"
mkdir -p "$work/recv"
chmod 755 "$work/recv"

psql -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
catalog=$(psql -d postgres -tA -c "SELECT current_setting('data_directory')")/synth_fuzz
as_pg rm -rf "$catalog"
on_exit_do+=("as_pg rm -rf '$catalog'")
[ "${FUZZ_KEEP:-}" = 1 ] || on_exit_do+=("psql -d postgres -c 'DROP DATABASE IF EXISTS $db WITH (FORCE)' >/dev/null")

tiny='"image_size": 16, "embed_dim": 8, "encoder_width": 4, "generator_width": 4, "batch": 8,
      "encoder": {"text": {"buckets": 256, "dim": 8}, "compose_hidden": 16}, "generator": {"cond_dim": 16},
      "eval_queries": 20, "eval_every": 0, "checkpoint_every": 10, "progress_every": 5'
psql -d $db -v catalog="$catalog" -v tiny="{$tiny}" >/dev/null <<'SQL'
CREATE EXTENSION synthsearch;
SELECT * FROM synth_generate_catalog(:'catalog' || '/a', 40, 7, 16);
SELECT * FROM synth_import_fashioniq(:'catalog' || '/a', 'fuzz_images', 'fuzz_pairs');
SELECT * FROM synth_generate_catalog(:'catalog' || '/b', 10, 3, 48);
SELECT * FROM synth_import_fashioniq(:'catalog' || '/b', 'fuzz_images48', 'fuzz_pairs48');
-- a trained model (the walks need a GAN that has trained), active
CREATE TABLE fuzz_setup (job bigint);
INSERT INTO fuzz_setup SELECT synth_train('fuzz_images', 'fuzz_pairs', :'tiny'::jsonb || '{"steps": 6, "name": "fuzz", "activate": true}');
CREATE TABLE fuzz_seed (name text PRIMARY KEY, img bytea);
INSERT INTO fuzz_seed SELECT 'catalog16', img FROM fuzz_images ORDER BY id LIMIT 1;
INSERT INTO fuzz_seed SELECT 'catalog48', img FROM fuzz_images48 ORDER BY id LIMIT 1;
INSERT INTO fuzz_seed SELECT 'strip', synth_image_strip(ARRAY(SELECT img FROM fuzz_seed ORDER BY name));
SQL
q "SELECT name || E'\t' || encode(img, 'hex') FROM fuzz_seed ORDER BY name" >"$work/seeds.txt"
$py tests/system/fuzz_inputs.py images "$work/seeds.txt" "$work/images.txt" &
gen=$!
$py tests/system/fuzz_inputs.py strip "$work/strip.txt"
$py tests/system/fuzz_inputs.py recv "$work/recv" "$work/recv.txt"
$py tests/system/fuzz_inputs.py text "$work/text.txt"
wait $gen
chmod 644 "$work"/*.txt "$work"/recv/*
for ((i = 0; i < 300; i++)); do
    state=$(q "SELECT state FROM synth_jobs WHERE job = (SELECT job FROM fuzz_setup)")
    case $state in succeeded) break ;; failed | cancelled) fail "the setup's training job $state" ;; esac
    sleep 0.2
done
[ "$state" = succeeded ] || fail "the setup's training job did not finish in 60 s ($state)"
q "SELECT encode(synth_model_export('fuzz'), 'hex')" >"$work/ckpt.hex"
$py tests/system/fuzz_inputs.py ckpt "$work/ckpt.hex" "$work/ckpts.txt"
chmod 644 "$work/ckpts.txt"

psql -d $db -v work="$work" >/dev/null <<'SQL'
INSERT INTO fuzz_seed VALUES ('generated', synth_generate('in black leather'));
CREATE TABLE fuzz_inputs (id serial PRIMARY KEY, label text NOT NULL, img bytea);
CREATE TABLE fuzz_ckpts (id serial PRIMARY KEY, label text NOT NULL, img bytea);
\set f :work '/images.txt'
COPY fuzz_inputs (label, img) FROM :'f';
INSERT INTO fuzz_inputs (label, img) SELECT 'seed-generated:ok', img FROM fuzz_seed WHERE name = 'generated';
\set f :work '/ckpts.txt'
COPY fuzz_ckpts (label, img) FROM :'f';
\set f :work '/strip.txt'
COPY fuzz_seed (name, img) FROM :'f';
CREATE TABLE fuzz_text (family text, label text, value text);
\set f :work '/text.txt'
COPY fuzz_text FROM :'f';
CREATE TABLE fuzz_recv (label text, tab text, file text);
\set f :work '/recv.txt'
COPY fuzz_recv FROM :'f';
CREATE TABLE fuzz_recv_emb (e embedding);
CREATE TABLE fuzz_recv_emb3 (e embedding(3));
CREATE TABLE fuzz_recv_q (q synthquery);
CREATE TABLE fuzz_vec AS SELECT i AS id, ARRAY[i % 7, i % 5, 1]::embedding(3) AS e FROM generate_series(1, 60) i;
CREATE TABLE fuzz_q AS SELECT synth_query(img, 'is red') AS q FROM fuzz_seed WHERE name = 'catalog16';
-- raw values: bytea reinterpreted as the types, as tests/system/formats.sh makes them
CREATE CAST (bytea AS embedding) WITHOUT FUNCTION;
CREATE CAST (embedding AS bytea) WITHOUT FUNCTION;
CREATE CAST (bytea AS synthquery) WITHOUT FUNCTION;
CREATE CAST (synthquery AS bytea) WITHOUT FUNCTION;
-- the smallest model a configuration allows (untrained)
SELECT synth_model_create('fuzz_min', '{"encoder": {"image_size": 16, "embed_dim": 1, "compose_hidden": 1, "kind": {"kind": "cnn", "width": 1},
  "text": {"buckets": 16, "dim": 1}}, "generator": {"noise_dim": 1, "width": 1, "cond_dim": 1, "critic_width": 1}}', -9223372036854775808);
-- a training table with corrupt images, for synth_train
CREATE TABLE fuzz_bad_images AS SELECT * FROM fuzz_images;
UPDATE fuzz_bad_images SET img = (SELECT img FROM fuzz_inputs WHERE label = 'png-ihdr:65535x65535')
 WHERE id = (SELECT min(id) FROM fuzz_bad_images);
UPDATE fuzz_bad_images SET img = substring(img FROM 1 FOR 40) WHERE id = (SELECT max(id) FROM fuzz_bad_images);

CREATE FUNCTION fuzz_good() RETURNS bytea LANGUAGE sql STABLE AS $$ SELECT img FROM fuzz_seed WHERE name = 'catalog16' $$;
CREATE FUNCTION fuzz_seed(n text) RETURNS bytea LANGUAGE sql STABLE AS $$ SELECT img FROM fuzz_seed WHERE name = n $$;
CREATE FUNCTION fuzz_q() RETURNS synthquery LANGUAGE sql STABLE AS $$ SELECT q FROM fuzz_q $$;
CREATE FUNCTION fuzz_emb() RETURNS embedding LANGUAGE sql STABLE AS $$ SELECT synth_query_embedding(q) FROM fuzz_q $$;
-- b followed by spaces up to n bytes (trailing bytes after a PNG's IEND are ignored)
CREATE FUNCTION fuzz_pad(b bytea, n int) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$ SELECT b || convert_to(repeat(' ', n - length(b)), 'UTF8') $$;
-- 0 <= h(x) < n, deterministic
CREATE FUNCTION fuzz_h(x int, n int) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT (((hashint4(x)::bigint % n) + n) % n)::int $$;
-- b with 1 to 3 bytes changed (half of them within its first `head` bytes) and every fifth cut short
CREATE FUNCTION fuzz_mutate(b bytea, k int, head int) RETURNS bytea LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    i int;
    pos int;
BEGIN
    FOR i IN 1..1 + fuzz_h(k, 3) LOOP
        pos := fuzz_h(k * 31 + i, CASE WHEN (k + i) % 2 = 0 THEN least(head, length(b)) ELSE length(b) END);
        b := set_byte(b, pos, fuzz_h(k * 17 + 7 * i, 256));
    END LOOP;
    IF k % 5 = 0 THEN
        b := substring(b FROM 1 FOR fuzz_h(k + 1, length(b)));
    END IF;
    RETURN b;
END $$;

-- What runs: over the images (src inputs, $1 the bytes), the checkpoints (src ckpts) or SQL cases
-- of a family (src cases, $2 the case's text argument); allowed: the SQLSTATEs it may give.
CREATE TABLE fuzz_fns (fn text PRIMARY KEY, src text, sql text, allowed text, once bool DEFAULT false);
CREATE TABLE fuzz_cases (id serial PRIMARY KEY, family text, label text, sql text, arg text, expect text);
CREATE TABLE fuzz_results (mode text, fn text, id int, label text, state text, message text, ms double precision);

CREATE FUNCTION fuzz_try(sql text, img bytea, arg text) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    st text;
    msg text;
BEGIN
    EXECUTE sql USING img, arg;
    RETURN ARRAY['ok', NULL];
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
    RETURN ARRAY[st, left(msg, 400)];
END $$;

CREATE FUNCTION fuzz_run(p_mode text, p_fn text, p_lo int, p_hi int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    f fuzz_fns;
    r record;
    res text[];
    t0 timestamptz;
    n int := 0;
BEGIN
    IF p_mode <> coalesce(current_setting('synthsearch.mode', true), 'backend') THEN
        RAISE EXCEPTION 'fuzz: synthsearch.mode is %, not %', current_setting('synthsearch.mode', true), p_mode;
    END IF;
    SELECT * INTO STRICT f FROM fuzz_fns WHERE fn = p_fn;
    FOR r IN
        SELECT i.id, i.label, i.img, f.sql AS sql, NULL::text AS arg FROM fuzz_inputs i
         WHERE f.src = 'inputs' AND i.id BETWEEN p_lo AND p_hi
        UNION ALL
        SELECT c.id, c.label, c.img, f.sql, NULL FROM fuzz_ckpts c WHERE f.src = 'ckpts' AND c.id BETWEEN p_lo AND p_hi
        UNION ALL
        SELECT c.id, c.label, NULL, c.sql, c.arg FROM fuzz_cases c
         WHERE f.src = 'cases' AND c.family = p_fn AND c.id BETWEEN p_lo AND p_hi
        ORDER BY 1
    LOOP
        t0 := clock_timestamp();
        res := fuzz_try(r.sql, r.img, r.arg);
        INSERT INTO fuzz_results VALUES (p_mode, p_fn, r.id, r.label, res[1], res[2],
                                         1000 * extract(epoch FROM clock_timestamp() - t0));
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;
SQL

# The functions over every image input, and the SQLSTATEs each may give.
img_ok='^(ok|22P03|54000)$'
psql -d $db -v img_ok="$img_ok" >/dev/null <<'SQL'
INSERT INTO fuzz_fns (fn, src, sql, allowed, once) VALUES
 ('encode',           'inputs', 'SELECT synth_encode($1)', :'img_ok', false),
 ('encode_batch',     'inputs', 'SELECT synth_encode_batch(ARRAY[$1])', :'img_ok', false),
 ('encode_batch_mix', 'inputs', 'SELECT synth_encode_batch(ARRAY[fuzz_good(), NULL, $1, fuzz_good()])', :'img_ok', false),
 ('query',            'inputs', 'SELECT synth_query($1, ''in black leather'')', :'img_ok', false),
 ('generate',         'inputs', 'SELECT length(synth_generate($1, ''is red''))', :'img_ok', false),
 ('distance',         'inputs', 'SELECT synth_distance($1, fuzz_q())', :'img_ok', false),
 ('walk',             'inputs', 'SELECT count(*) FROM synth_walk($1, ''is red'', ''is blue'', 2)', :'img_ok', false),
 ('walk_strip',       'inputs', 'SELECT length(synth_walk_strip(fuzz_good(), $1, ''is red'', 3))', :'img_ok', false),
 ('strip',            'inputs', 'SELECT length(synth_image_strip(ARRAY[$1]))', :'img_ok', true),
 ('strip_pair',       'inputs', 'SELECT length(synth_image_strip(ARRAY[fuzz_good(), $1, fuzz_seed(''catalog48'')]))', :'img_ok', true),
 ('import',           'inputs', 'SELECT synth_model_import($1, ''fuzz_garbage'')', '^(22P03|0A000|54000)$', true),
 -- checkpoints: stored if they load, then used (a model loads in the server, or in the backend)
 ('ckpt_import',      'ckpts',  'SELECT synth_model_import($1, ''fuzz_ckpt'')', '^(ok|22P03|0A000|54000|53200|22023|22000|XX001)$', true),
 ('ckpt_use',         'ckpts',  'SELECT synth_encode(fuzz_good(), synth_model_import($1, ''fuzz_ckpt'')::text),
                                        length(synth_generate(fuzz_good(), ''is red'', synth_model_import($1, ''fuzz_ckpt'')::text))',
                      '^(ok|22P03|0A000|54000|53200|22023|22000|XX001|55000)$', false);
SQL

# SQL cases. expect: the one SQLSTATE a case must give, where it is certain.
psql -d $db >/dev/null <<'SQL'
INSERT INTO fuzz_fns (fn, src, allowed, once) VALUES
 ('arrays',         'cases', '^(ok|22[0-9A-Z]{3}|54000)$', false),
 ('strips',         'cases', '^(ok|22[0-9A-Z]{3}|54000)$', true),
 ('heavy',          'cases', '^(ok|22P03|54000)$', false),
 ('heavy_once',     'cases', '^(ok|22P03|54000)$', true),
 ('walks',          'cases', '^(ok|22[0-9A-Z]{3}|54000|55000)$', false),
 ('references',     'cases', '^(ok|22[0-9A-Z]{3}|54000)$', false),
 ('model_args',     'cases', '^(ok|22[0-9A-Z]{3}|42704|55000)$', false),
 ('types',          'cases', '^(ok|22[0-9A-Z]{3}|54000)$', true),
 ('embedding_text', 'cases', '^(ok|22[0-9A-Z]{3}|54000)$', true),
 ('synthquery_text','cases', '^(ok|22[0-9A-Z]{3}|54000|42704|55000)$', false),
 ('recv',           'cases', '^(ok|22[0-9A-Z]{3}|54000)$', true),
 ('raw',            'cases', '^(ok|22[0-9A-Z]{3}|54000|XX001|0A000)$', false),
 ('knobs',          'cases', '^(ok|22[0-9A-Z]{3}|54000|53200|42704|23514|55000|58030)$', true);

CREATE FUNCTION fuzz_case(f text, l text, s text, e text DEFAULT NULL, a text DEFAULT NULL) RETURNS void
    LANGUAGE sql AS $$ INSERT INTO fuzz_cases (family, label, sql, arg, expect) VALUES (f, l, s, a, e) $$;

-- arrays: synth_encode_batch (at most 4096) and synth_image_strip (at most 256; it uses no model:
-- the first mode only)
SELECT fuzz_case('arrays', 'batch-empty', $$SELECT synth_encode_batch('{}'::bytea[])$$);
SELECT fuzz_case('arrays', 'batch-null-array', $$SELECT synth_encode_batch(NULL::bytea[])$$, 'ok');
SELECT fuzz_case('arrays', 'batch-nulls', $$SELECT synth_encode_batch(ARRAY[NULL, NULL]::bytea[])$$, 'ok');
SELECT fuzz_case('arrays', 'batch-4096', $$SELECT cardinality(synth_encode_batch(array_fill(fuzz_good(), ARRAY[4096])))$$, 'ok');
SELECT fuzz_case('arrays', 'batch-4097', $$SELECT synth_encode_batch(array_fill(fuzz_good(), ARRAY[4097]))$$, '54000');
SELECT fuzz_case('arrays', 'batch-20000-nulls', $$SELECT synth_encode_batch(array_fill(NULL::bytea, ARRAY[20000]))$$, '54000');
SELECT fuzz_case('arrays', 'batch-2d', $$SELECT synth_encode_batch(array_fill(fuzz_good(), ARRAY[3, 2]))$$);
SELECT fuzz_case('arrays', 'batch-3d', $$SELECT synth_encode_batch(array_fill(fuzz_good(), ARRAY[2, 2, 2]))$$);
SELECT fuzz_case('arrays', 'batch-lower-bound', $$SELECT synth_encode_batch(array_fill(fuzz_good(), ARRAY[3], ARRAY[-5]))$$, 'ok');
SELECT fuzz_case('arrays', 'batch-bad-second', $$SELECT synth_encode_batch(ARRAY[fuzz_good(), '\x00'::bytea, fuzz_good()])$$, '22P03');
SELECT fuzz_case('arrays', 'batch-empty-image', $$SELECT synth_encode_batch(ARRAY[NULL, ''::bytea])$$, '22P03');
SELECT fuzz_case('arrays', 'batch-mixed-formats', $$SELECT synth_encode_batch(ARRAY(SELECT img FROM fuzz_inputs WHERE label LIKE '%:ok'))$$, 'ok');
SELECT fuzz_case('strips', 'strip-empty', $$SELECT synth_image_strip('{}'::bytea[])$$, '22023');
SELECT fuzz_case('strips', 'strip-null-element', $$SELECT synth_image_strip(ARRAY[NULL]::bytea[])$$, '22004');
SELECT fuzz_case('strips', 'strip-null-array', $$SELECT synth_image_strip(NULL::bytea[])$$, 'ok');
SELECT fuzz_case('strips', 'strip-256', $$SELECT length(synth_image_strip(array_fill(fuzz_good(), ARRAY[256])))$$, 'ok');
SELECT fuzz_case('strips', 'strip-257', $$SELECT synth_image_strip(array_fill(fuzz_good(), ARRAY[257]))$$, '54000');
SELECT fuzz_case('strips', 'strip-20000', $$SELECT synth_image_strip(array_fill(fuzz_good(), ARRAY[20000]))$$, '54000');
SELECT fuzz_case('strips', 'strip-2d', $$SELECT length(synth_image_strip(array_fill(fuzz_good(), ARRAY[2, 3])))$$);
SELECT fuzz_case('strips', 'strip-lower-bound', $$SELECT length(synth_image_strip(array_fill(fuzz_good(), ARRAY[2], ARRAY[0])))$$, 'ok');
SELECT fuzz_case('strips', 'strip-all-formats', $$SELECT length(synth_image_strip(ARRAY(SELECT img FROM fuzz_inputs WHERE label LIKE '%:ok')))$$, 'ok');
SELECT fuzz_case('strips', 'strip-1x8192-and-1x1', $$SELECT length(synth_image_strip(ARRAY[fuzz_seed('tall-1x8192'), fuzz_seed('dot-1x1')]))$$, '54000');
SELECT fuzz_case('strips', 'strip-256-of-1x8192', $$SELECT length(synth_image_strip(array_fill(fuzz_seed('tall-1x8192'), ARRAY[256])))$$, 'ok');
SELECT fuzz_case('strips', 'strip-256-of-8192x1', $$SELECT length(synth_image_strip(array_fill(fuzz_seed('wide-8192x1'), ARRAY[256])))$$);
SELECT fuzz_case('strips', 'strip-8192x1-and-1x8192', $$SELECT length(synth_image_strip(ARRAY[fuzz_seed('wide-8192x1'), fuzz_seed('tall-1x8192')]))$$);

-- heavy: the 32 MiB limit, and images of 8192x4097 (33.6 megapixels)
SELECT fuzz_case('heavy', 'encode-32MiB', $$SELECT synth_encode(fuzz_pad(fuzz_good(), 33554432))$$, 'ok');
SELECT fuzz_case('heavy', 'encode-32MiB+1', $$SELECT synth_encode(fuzz_pad(fuzz_good(), 33554433))$$, '54000');
SELECT fuzz_case('heavy', 'encode-64MiB-garbage', $$SELECT synth_encode(convert_to(repeat('x', 67108864), 'UTF8'))$$, '54000');
SELECT fuzz_case('heavy', 'encode-32MiB-spaces', $$SELECT synth_encode(fuzz_pad(''::bytea, 33554432))$$, '22P03');
SELECT fuzz_case('heavy', 'batch-2x32MiB', $$SELECT synth_encode_batch(ARRAY[fuzz_pad(fuzz_good(), 33554432), fuzz_pad(fuzz_seed('catalog48'), 33554432)])$$);
SELECT fuzz_case('heavy', 'batch-32MiB+1-second', $$SELECT synth_encode_batch(ARRAY[fuzz_good(), fuzz_pad(fuzz_good(), 33554433)])$$, '54000');
SELECT fuzz_case('heavy', 'query-32MiB+1', $$SELECT synth_query(fuzz_pad(fuzz_good(), 33554433), 'is red')$$, '54000');
SELECT fuzz_case('heavy', 'encode-8192x4097', $$SELECT synth_encode(fuzz_seed('big-8192x4097'))$$, 'ok');
-- the grown sizes are within 40 megapixels, the canvas of equal cells is not
SELECT fuzz_case('heavy_once', 'strip-8192x4097-and-1x8192', $$SELECT length(synth_image_strip(ARRAY[fuzz_seed('big-8192x4097'), fuzz_seed('tall-1x8192')]))$$, '54000');
SELECT fuzz_case('heavy_once', 'strip-8192x4097-and-16x16', $$SELECT length(synth_image_strip(ARRAY[fuzz_seed('big-8192x4097'), fuzz_good()]))$$, '54000');
-- 8192x4097 beside 255 of 1x8192: 35.7 megapixels in, a 51 GB canvas of 256 cells of 8192x8192
SELECT fuzz_case('heavy_once', 'strip-8192x4097-and-255-of-1x8192',
    $$SELECT length(synth_image_strip(ARRAY[fuzz_seed('big-8192x4097')] || array_fill(fuzz_seed('tall-1x8192'), ARRAY[255])))$$, '54000');

-- walks: points 2 to 64
SELECT fuzz_case('walks', 'text-points-' || p, format('SELECT synth_walk_images(%L, %L, %s, NULL)', 'is red', 'is blue', p),
                 CASE WHEN p IN (2, 64) THEN 'ok' ELSE '22023' END)
  FROM unnest(ARRAY[-2147483648, -1, 0, 1, 2, 64, 65, 1000, 2147483647]) p;
SELECT fuzz_case('walks', 'bytea-points-' || p, format('SELECT count(*) FROM synth_walk(fuzz_good(), %L, %L, %s)', 'is red', 'is blue', p),
                 CASE WHEN p IN (2, 64) THEN 'ok' ELSE '22023' END)
  FROM unnest(ARRAY[-2147483648, -1, 0, 1, 2, 64, 65, 2147483647]) p;
SELECT fuzz_case('walks', 'refs-points-' || p, format('SELECT length(synth_walk_strip(fuzz_good(), fuzz_seed(%L), %L, %s))', 'catalog48', 'is red', p),
                 CASE WHEN p IN (2, 64) THEN 'ok' ELSE '22023' END)
  FROM unnest(ARRAY[-1, 0, 1, 2, 64, 65]) p;
SELECT fuzz_case('walks', 'emb-points-' || p, format('SELECT count(*) FROM synth_walk(fuzz_emb(), fuzz_emb(), %L, %s)', 'is red', p),
                 CASE WHEN p IN (2, 64) THEN 'ok' ELSE '22023' END)
  FROM unnest(ARRAY[-1, 0, 1, 2, 64, 65]) p;
SELECT fuzz_case('walks', 'text-strip-points-' || p, format('SELECT length(synth_walk_strip(%L, %L, %s))', 'is red', 'is blue', p),
                 CASE WHEN p IN (2, 64) THEN 'ok' ELSE '22023' END)
  FROM unnest(ARRAY[0, 1, 2, 64, 65, 2147483647]) p;
SELECT fuzz_case('walks', 'points-null', $$SELECT synth_walk_images('is red', 'is blue', NULL, NULL)$$, 'ok');
SELECT fuzz_case('walks', 'refs-null', $$SELECT synth_walk_images(NULL::bytea, fuzz_good(), 'a', 'b', 2, NULL)$$, 'ok');
SELECT fuzz_case('walks', 'emb-3-dims', $$SELECT synth_walk_images('[1,2,3]'::embedding, '[1,2,3]'::embedding, 'is red', 'is red', 4, NULL)$$, '22000');
SELECT fuzz_case('walks', 'emb-16000-dims', $$SELECT synth_walk_images(array_fill(1, ARRAY[16000])::embedding, fuzz_emb(), 'is red', 'is red', 4, NULL)$$, '22000');
SELECT fuzz_case('walks', 'emb-dims-differ', $$SELECT synth_walk_images(fuzz_emb(), '[1,2,3]'::embedding, 'is red', 'is red', 4, NULL)$$, '22000');
SELECT fuzz_case('walks', 'bad-image-second', $$SELECT synth_walk_images(fuzz_good(), '\x89504e47'::bytea, 'is red', 'is red', 4, NULL)$$, '22P03');
SELECT fuzz_case('walks', 'wish-empty', $$SELECT synth_walk_images('', 'is blue', 4, NULL)$$, '22023');
SELECT fuzz_case('walks', 'wish-blank', $$SELECT synth_walk_images('is red', E' \t\n ', 4, NULL)$$, '22023');
SELECT fuzz_case('walks', 'wish-1000-bytes', $$SELECT synth_walk_images(repeat('ü', 500), 'is blue', 2, NULL)$$, 'ok');
SELECT fuzz_case('walks', 'wish-1002-bytes', $$SELECT synth_walk_images(repeat('ü', 501), 'is blue', 2, NULL)$$, '22023');
SELECT fuzz_case('walks', 'wish-1MB', $$SELECT synth_walk_images(repeat('a', 1000000), 'is blue', 2, NULL)$$, '22023');
SELECT fuzz_case('walks', 'untrained-model', $$SELECT synth_walk_images('is red', 'is blue', 2, 'fuzz_min')$$, '55000');

-- references: embeddings of wrong dimensions, extreme values; wishes
SELECT fuzz_case('references', 'query-emb-3', $$SELECT synth_query('[1,2,3]'::embedding, 'is red')$$, '22000');
SELECT fuzz_case('references', 'query-emb-1', $$SELECT synth_query('[1]'::embedding, 'is red')$$, '22000');
SELECT fuzz_case('references', 'query-emb-16000', $$SELECT synth_query(array_fill(1, ARRAY[16000])::embedding, 'is red')$$, '22000');
SELECT fuzz_case('references', 'query-emb-zero', $$SELECT synth_query(array_fill(0, ARRAY[8])::embedding, 'is red')$$);
SELECT fuzz_case('references', 'query-emb-max', $$SELECT synth_query(array_fill(3.4e38::real, ARRAY[8])::embedding, 'is red')$$);
SELECT fuzz_case('references', 'query-emb-min', $$SELECT synth_query(array_fill(-3.4e38::real, ARRAY[8])::embedding, 'is red')$$);
SELECT fuzz_case('references', 'query-emb-denormal', $$SELECT synth_query(array_fill(1e-45::real, ARRAY[8])::embedding, 'is red')$$);
SELECT fuzz_case('references', 'generate-emb-3', $$SELECT synth_generate('[1,2,3]'::embedding, 'is red')$$, '22000');
SELECT fuzz_case('references', 'generate-emb-max', $$SELECT length(synth_generate(array_fill(3.4e38::real, ARRAY[8])::embedding, 'is red'))$$);
SELECT fuzz_case('references', 'distance-dims', $$SELECT '[1,2,3]'::embedding <-> fuzz_q()$$, '22000');
SELECT fuzz_case('references', 'distance-16000', $$SELECT array_fill(1, ARRAY[16000])::embedding <-> fuzz_q()$$, '22000');
SELECT fuzz_case('references', 'wish-empty', $$SELECT synth_query(fuzz_good(), '')$$, '22023');
SELECT fuzz_case('references', 'wish-1001', $$SELECT synth_query(fuzz_good(), repeat('x', 1001))$$, '22023');
SELECT fuzz_case('references', 'wish-1000', $$SELECT synth_query(fuzz_good(), repeat('x', 1000))$$, 'ok');
SELECT fuzz_case('references', 'wish-control', $$SELECT synth_query(fuzz_good(), E'\x01\x02 red \x7f')$$);
SELECT fuzz_case('references', 'wish-words-500', $$SELECT synth_query(fuzz_good(), repeat('a ', 500))$$);
SELECT fuzz_case('references', 'generate-text-empty', $$SELECT synth_generate('')$$, '22023');
SELECT fuzz_case('references', 'generate-text-1MB', $$SELECT synth_generate(repeat('b', 1000000))$$, '22023');
SELECT fuzz_case('references', 'generate-null-wish', $$SELECT synth_generate(fuzz_good(), NULL)$$, 'ok');
SELECT fuzz_case('references', 'literal-empty', $$SELECT ''::synthquery$$, '22023');
SELECT fuzz_case('references', 'literal-1001', $$SELECT repeat('y', 1001)::synthquery$$, '22023');

-- model arguments
SELECT fuzz_case('model_args', fn || '-' || regexp_replace(left(m, 20), '\s', '_', 'g'), format(s, m))
  FROM (VALUES ('encode', 'SELECT synth_encode(fuzz_good(), %L)'),
               ('batch', 'SELECT synth_encode_batch(ARRAY[fuzz_good()], %L)'),
               ('query', 'SELECT synth_query(fuzz_good(), ''is red'', %L)'),
               ('generate', 'SELECT length(synth_generate(''is red'', %L))'),
               ('walk', 'SELECT synth_walk_images(''is red'', ''is blue'', 2, %L)')) f(fn, s),
       unnest(ARRAY['', 'nope', 'fuzz:0', 'fuzz:-1', 'fuzz:99999999999999999999', 'fuzz:1:2', 'fuzz:', ':', E'fuzz\n',
                    '0', '-1', '9223372036854775807', '-9223372036854775808', '99999999999999999999', 'fuzz_min',
                    repeat('m', 100000)]) m;

-- the types' input: dimensions at and over 16000, typmods, arrays
SELECT fuzz_case('types', 'text-16000', $$SELECT ('[' || repeat('1,', 15999) || '1]')::embedding$$, 'ok');
SELECT fuzz_case('types', 'text-16001', $$SELECT ('[' || repeat('1,', 16000) || '1]')::embedding$$, '54000');
SELECT fuzz_case('types', 'text-100000', $$SELECT ('[' || repeat('1,', 99999) || '1]')::embedding$$, '54000');
SELECT fuzz_case('types', 'text-100000-nan', $$SELECT ('[' || repeat('NaN,', 99999) || 'NaN]')::embedding$$);
SELECT fuzz_case('types', 'text-1000000-empty', $$SELECT ('[' || repeat(',', 1000000) || ']')::embedding$$);
SELECT fuzz_case('types', 'typmod-' || t, format('SELECT %L::embedding(%s)', '[1]', t), '22023')
  FROM unnest(ARRAY['0', '-1', '16001', '2147483647']) t;
SELECT fuzz_case('types', 'typmod-16000', $$SELECT array_fill(1, ARRAY[16000])::embedding(16000)$$, 'ok');
SELECT fuzz_case('types', 'typmod-mismatch', $$SELECT '[1,2]'::embedding(3)$$, '22000');
SELECT fuzz_case('types', 'array-empty', $$SELECT '{}'::real[]::embedding$$, '22000');
SELECT fuzz_case('types', 'array-null', $$SELECT '{NULL}'::real[]::embedding$$, '22004');
SELECT fuzz_case('types', 'array-2d', $$SELECT '{{1,2},{3,4}}'::real[]::embedding$$);
SELECT fuzz_case('types', 'array-3d', $$SELECT array_fill(1::real, ARRAY[2,2,2])::embedding$$);
SELECT fuzz_case('types', 'array-lower-bound', $$SELECT '[-3:-1]={1,2,3}'::real[]::embedding$$, 'ok');
SELECT fuzz_case('types', 'array-16001', $$SELECT array_fill(1::real, ARRAY[16001])::embedding$$, '54000');
SELECT fuzz_case('types', 'array-1000000', $$SELECT array_fill(1::real, ARRAY[1000000])::embedding$$, '54000');
SELECT fuzz_case('types', 'array-int-16000', $$SELECT array_fill(7, ARRAY[16000])::embedding$$, 'ok');
SELECT fuzz_case('types', 'array-numeric-1e400', $$SELECT '{1e400}'::numeric[]::embedding$$, '22003');
SELECT fuzz_case('types', 'array-numeric-nan', $$SELECT '{NaN}'::numeric[]::embedding$$, '22000');
SELECT fuzz_case('types', 'array-double-1e300', $$SELECT '{1e300}'::float8[]::embedding$$, '22003');
SELECT fuzz_case('types', 'array-double-nan', $$SELECT '{NaN}'::float8[]::embedding$$, '22000');
SELECT fuzz_case('types', 'array-double-inf', $$SELECT '{-Infinity}'::float8[]::embedding$$, '22000');
SELECT fuzz_case('types', 'array-double-denormal', $$SELECT '{1e-320}'::float8[]::embedding$$);
SELECT fuzz_case('types', 'array-nulls-16001', $$SELECT array_fill(NULL::real, ARRAY[16001])::embedding$$);
SELECT fuzz_case('types', 'sum-overflow', $$SELECT '[3e38]'::embedding + '[3e38]'$$, '22003');
SELECT fuzz_case('types', 'avg-dims', $$SELECT avg(e) FROM (VALUES ('[1,2]'::embedding), ('[1]')) v(e)$$, '22000');
SELECT fuzz_case('types', 'avg-16000', $$SELECT dims(avg(array_fill(i, ARRAY[16000])::embedding)) FROM generate_series(1, 50) i$$, 'ok');
SELECT fuzz_case('types', 'normalize-zero', $$SELECT l2_normalize('[0,0,0]')$$);
SELECT fuzz_case('types', 'normalize-max', $$SELECT l2_normalize(array_fill(3.4e38::real, ARRAY[16000])::embedding)$$);
SELECT fuzz_case('types', 'norm-max', $$SELECT l2_norm(array_fill(3.4e38::real, ARRAY[16000])::embedding)$$);
SELECT fuzz_case('types', 'distance-max', $$SELECT array_fill(3.4e38::real, ARRAY[16000])::embedding <-> array_fill(-3.4e38::real, ARRAY[16000])::embedding$$);
SELECT fuzz_case('types', 'cosine-zero', $$SELECT '[0,0]'::embedding <=> '[0,0]'$$);
SELECT fuzz_case('embedding_text', family || ':' || label, 'SELECT $2::embedding', NULL, value)
  FROM fuzz_text WHERE family = 'embedding-text';
SELECT fuzz_case('synthquery_text', family || ':' || label, 'SELECT $2::synthquery::text', NULL, value)
  FROM fuzz_text WHERE family = 'synthquery-text';
SELECT fuzz_case('synthquery_text', 'bare:' || w, 'SELECT fuzz_emb() <-> $2::synthquery', NULL, w)
  FROM unnest(ARRAY['x', '   red', E'\t', 'ü', repeat('ab ', 333), repeat('ab ', 334), '!@#$%^&*()', 'synthquery', 'synthquery:']) w;
SELECT fuzz_case('recv', label, format('COPY %I FROM %L (FORMAT binary)', tab, file)) FROM fuzz_recv;
UPDATE fuzz_cases SET expect = CASE
    WHEN label IN ('emb:ok3', 'emb:ok16000', 'emb:typmod-ok', 'emb:null', 'synthquery:ok') THEN 'ok'
    WHEN label IN ('emb:dims16001', 'emb:dims65535-short', 'emb:dims3-short', 'emb:len0', 'emb:len3') THEN '22P03'
    WHEN label IN ('emb:nan', 'emb:inf', 'emb:-inf', 'emb:typmod-mismatch') THEN '22000' END
 WHERE family = 'recv';

-- raw values with flipped bytes (what a damaged page would hold)
SELECT fuzz_case('raw', 'emb-' || k || '-' || op, format(s, encode(fuzz_mutate(fuzz_emb()::bytea, k, 4), 'hex')))
  FROM generate_series(1, 40) k,
       (VALUES ('dims', 'SELECT dims(''\x%s''::bytea::embedding)'),
               ('text', 'SELECT ''\x%s''::bytea::embedding::text'),
               ('distance', 'SELECT ''\x%1$s''::bytea::embedding <-> ''\x%1$s''::bytea::embedding'),
               ('query', 'SELECT synth_query(''\x%s''::bytea::embedding, ''is red'')')) o(op, s);
SELECT fuzz_case('raw', 'q-' || k || '-' || op, format(s, encode(fuzz_mutate(fuzz_q()::bytea, k, 20), 'hex')))
  FROM generate_series(1, 40) k,
       (VALUES ('text', 'SELECT synth_query_text(''\x%s''::bytea::synthquery)'),
               ('out', 'SELECT ''\x%s''::bytea::synthquery::text'),
               ('embedding', 'SELECT synth_query_embedding(''\x%s''::bytea::synthquery)'),
               ('distance', 'SELECT fuzz_emb() <-> ''\x%s''::bytea::synthquery')) o(op, s);
SELECT fuzz_case('raw', 'emb-crafted-' || l, format('SELECT dims(%L::bytea::embedding), %L::bytea::embedding::text', b, b))
  FROM (VALUES ('empty', '\x'), ('1-byte', '\x03'), ('dims-ffff', '\xffff00000000803f0000803f0000803f'),
               ('dims-0', '\x00000000'), ('dims-0-data', '\x000000000000803f'), ('odd-length', '\x010000000000803f00'),
               ('nan', '\x020000000000803f0000c07f'), ('inf', '\x020000000000807f0000803f')) v(l, b);
SELECT fuzz_case('raw', 'emb-crafted-query-' || l, format('SELECT synth_query(%L::bytea::embedding, %L)', b, 'is red'))
  FROM (VALUES ('nan', '\x080000000000c07f0000c07f0000c07f0000c07f0000c07f0000c07f0000c07f0000c07f'),
               ('inf', '\x080000000000807f0000807f0000807f0000807f0000807f0000807f0000807f0000807f'),
               ('dims-ffff', '\xffff00000000803f')) v(l, b);
SELECT fuzz_case('raw', 'q-crafted-' || l, format('SELECT synth_query_text(%L::bytea::synthquery)', b))
  FROM (VALUES ('empty', '\x'), ('format-only', '\x01'),
               ('header-only', '\x0100000000000000000000000000000000000000'),
               ('dims-ffff', '\x0100ffff00000000000000000000000000000000'),
               ('text-len-max', '\x01000000000000000000000000ffffffff000000'),
               ('bad-utf8', '\x0100000001000000000000000100000000000000ff')) v(l, b);

-- knobs: catalog sizes, model configurations, index options, settings, ids
SELECT fuzz_case('knobs', format('catalog-%s-%s', n, s),
                 format('SELECT * FROM synth_generate_catalog(%L, %s, 1, %s)', current_setting('data_directory') || '/synth_fuzz/k', n, s),
                 CASE WHEN n BETWEEN 10 AND 1000000 AND s BETWEEN 8 AND 1024 THEN 'ok' ELSE '22023' END)
  FROM (VALUES (-2147483648, 16), (-1, 16), (0, 16), (9, 16), (1000001, 16), (2147483647, 16),
               (10, -2147483648), (10, -1), (10, 0), (10, 7), (10, 1025), (10, 65536), (10, 2147483647),
               (10, 8), (10, 1024)) v(n, s);
SELECT fuzz_case('knobs', 'catalog-seed-' || s, format('SELECT * FROM synth_generate_catalog(%L, 10, %s, 8)', current_setting('data_directory') || '/synth_fuzz/k', s), 'ok')
  FROM unnest(ARRAY['-9223372036854775808', '9223372036854775807', '0']) s;
SELECT fuzz_case('knobs', 'catalog-null-' || a, format('SELECT * FROM synth_generate_catalog(%s)', a), '22004')
  FROM unnest(ARRAY['NULL, 10', '''/tmp/x'', NULL', '''/tmp/x'', 10, NULL', '''/tmp/x'', 10, 1, NULL']) a;
SELECT fuzz_case('knobs', 'catalog-dir-' || left(d, 20), format('SELECT * FROM synth_generate_catalog(%L, 10, 1, 8)', d))
  FROM unnest(ARRAY['/proc/fuzz', '/dev/null/x', '/' || repeat('d', 5000)]) d;
SELECT fuzz_case('knobs', 'model-' || left(c, 60), format('SELECT synth_model_create(%L, %L, 1)', 'fuzz_knob', c))
  FROM unnest(ARRAY[
    '{"encoder": {"image_size": 0}}', '{"encoder": {"image_size": 8}}', '{"encoder": {"image_size": 24}}',
    '{"encoder": {"image_size": 512}}', '{"encoder": {"image_size": 2147483648}}', '{"encoder": {"image_size": -16}}',
    '{"encoder": {"image_size": "16"}}', '{"encoder": {"image_size": 16.5}}', '{"encoder": {"image_size": null}}',
    '{"encoder": {"embed_dim": 0}}', '{"encoder": {"embed_dim": 16001}}', '{"encoder": {"embed_dim": 18446744073709551616}}',
    '{"encoder": {"kind": {"kind": "cnn", "width": 0}}}', '{"encoder": {"kind": {"kind": "cnn", "width": 513}}}',
    '{"encoder": {"kind": {"kind": "torchscript"}}}', '{"encoder": {"kind": "x"}}',
    '{"encoder": {"compose_hidden": 0}}', '{"encoder": {"compose_hidden": 4097}}',
    '{"encoder": {"text": {"buckets": 15}}}', '{"encoder": {"text": {"buckets": 16777217}}}',
    '{"encoder": {"text": {"dim": 0}}}', '{"encoder": {"text": {"dim": 4097}}}',
    '{"encoder": {"text": {"min_n": 5, "max_n": 1}}}', '{"encoder": {"text": {"min_n": 0, "max_n": 1000000}}}',
    '{"encoder": {"text": {"pretrained_dim": 0}}}',
    '{"generator": {"noise_dim": 0}}', '{"generator": {"noise_dim": 1025}}', '{"generator": {"width": 0}}',
    '{"generator": {"width": 513}}', '{"generator": {"critic_width": 0}}', '{"generator": {"cond_dim": 0}}',
    '{"generator": {"cond_dim": 4097}}', '{"generator": {"query_expansion": -1}}', '{"generator": {"query_expansion": 1e308}}',
    '{"generator": {"pixel_skips": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]}}',
    '{"nope": 1}', '[]', '1', 'null', '"x"', '{"encoder": []}', '{"encoder": {"nested": {"a": {"b": {}}}}}']) c;
-- within every range, but the text table would take 256 GiB: refused, never a crash or a panic
SELECT fuzz_case('knobs', 'model-text-256GiB', $$SELECT synth_model_create('fuzz_knob', '{"encoder": {"text": {"buckets": 16777216, "dim": 4096}}}')$$);
SELECT fuzz_case('knobs', 'model-name-empty', $$SELECT synth_model_create('', '{}', 1)$$);
SELECT fuzz_case('knobs', 'model-seed-extremes', $$SELECT synth_model_create('fuzz_knob', '{"encoder": {"image_size": 16, "embed_dim": 2, "kind": {"kind": "cnn", "width": 1}, "text": {"buckets": 16, "dim": 1}, "compose_hidden": 1}, "generator": {"noise_dim": 1, "width": 1, "cond_dim": 1, "critic_width": 1}}', 9223372036854775807)$$, 'ok');
SELECT fuzz_case('knobs', 'index-' || o, format('CREATE INDEX ON fuzz_vec USING synthivf (e) WITH (%s)', o),
                 CASE WHEN o IN ('lists = 32768', 'lists = 0', 'sample_per_list = 4', 'sample_per_list = 1024',
                                 'kmeans_iterations = 1', 'kmeans_iterations = 100') THEN 'ok' ELSE '22023' END)
  FROM unnest(ARRAY['lists = -1', 'lists = 32769', 'lists = 2147483648', 'lists = 32768', 'lists = 0',
                    'sample_per_list = 3', 'sample_per_list = 1025', 'sample_per_list = 4', 'sample_per_list = 1024',
                    'kmeans_iterations = 0', 'kmeans_iterations = 101', 'kmeans_iterations = 1', 'kmeans_iterations = 100',
                    'lists = ''x''', 'nope = 1']) o;
SELECT fuzz_case('knobs', 'setting-' || s, 'SET ' || s,
                 CASE WHEN s IN ('synthsearch.nprobe = 32768', 'synthsearch.threads = 256', 'synthsearch.nprobe = 1') THEN 'ok' ELSE '22023' END)
  FROM unnest(ARRAY['synthsearch.nprobe = 0', 'synthsearch.nprobe = 32769', 'synthsearch.nprobe = 32768',
                    'synthsearch.max_probes = -1', 'synthsearch.max_probes = 32769', 'synthsearch.threads = 0',
                    'synthsearch.threads = 257', 'synthsearch.threads = 256', 'synthsearch.max_scan_tuples = -1',
                    'synthsearch.nprobe = 1']) s;
SELECT fuzz_case('knobs', 'reset-settings', 'RESET ALL', 'ok');
SELECT fuzz_case('knobs', 'scan-nprobe-max', $$SELECT count(*) FROM (SELECT id FROM fuzz_vec ORDER BY e <-> '[1,1,1]' LIMIT 100000) s$$, 'ok');
SELECT fuzz_case('knobs', 'ids-' || s, s)
  FROM unnest(ARRAY['SELECT synth_job_curves(-1)', 'SELECT synth_job_curves(9223372036854775807)', 'SELECT synth_job_curves(NULL)',
                    'SELECT synth_cancel(-1)', 'SELECT synth_cancel(NULL)', 'SELECT synth_model_activate(-1)',
                    'SELECT synth_model_activate(9223372036854775807, true)', 'SELECT synth_model_drop(-9223372036854775808)',
                    'SELECT synth_model_export(''nope'')', 'SELECT synth_model_export('''')',
                    'SELECT synth_model_export(repeat(''x'', 100000))']) s;
SELECT fuzz_case('knobs', 'import-empty', $$SELECT synth_model_import(''::bytea)$$, '22P03');
SELECT fuzz_case('knobs', 'import-name-empty', $$SELECT synth_model_import(synth_model_export('fuzz'), '')$$);
SELECT fuzz_case('knobs', 'import-name-100000', $$SELECT synth_model_import(synth_model_export('fuzz'), repeat('n', 100000))$$);
SELECT fuzz_case('knobs', 'import-magic-only', $$SELECT synth_model_import('\x53594e5448434b500100000000000000000000ff'::bytea)$$, '22P03');
SELECT fuzz_case('knobs', 'import-32MiB-garbage', $$SELECT synth_model_import(fuzz_pad('\x00'::bytea, 33554433))$$, '22P03');
SQL

# The 256 GiB cases only where such an allocation fails at once (no overcommit, less memory).
mem_kb=$(awk '/^(MemTotal|SwapTotal):/ { kb += $2 } END { print kb + 0 }' /proc/meminfo)
if [ "$(cat /proc/sys/vm/overcommit_memory 2>/dev/null || echo 1)" = 1 ] || [ "$mem_kb" -ge $((200 << 20)) ]; then
    q "DELETE FROM fuzz_cases WHERE label LIKE '%256GiB%'; DELETE FROM fuzz_ckpts WHERE label LIKE '%256GiB%'" >/dev/null
    huge_job=""
    echo "fuzz: this machine could allocate 256 GiB: those cases are left out"
else
    huge_job='either|fuzz_images|{"encoder": {"text": {"buckets": 16777216, "dim": 4096}}, "steps": 2}'
fi
[ -z "${FUZZ_EXTRA_SQL:-}" ] || q "$FUZZ_EXTRA_SQL" >/dev/null

# Runs `SELECT fuzz_run(mode, fn, lo, hi)` in a connection of its own; 0 ok, 1 an error the
# wrapper did not catch (a statement timeout: a hang), 2 the connection was lost (a crash).
last=""
run_once() {
    local mode=$1 fn=$2 lo=$3 hi=$4 timeout=$5 opts="-c statement_timeout=${5}s" rc=0
    [ "${modes[0]}" = backend ] && [ ${#modes[@]} = 1 ] || opts="$opts -c synthsearch.mode=$mode"
    last=$(PGOPTIONS="$opts" psql -d $db -tA -v VERBOSITY=verbose -c "SELECT fuzz_run('$mode', '$fn', $lo, $hi)" 2>&1) || rc=$?
    if grep -Eq 'server closed the connection unexpectedly|connection to server was lost|no connection to the server|FATAL|terminating connection|could not connect' <<<"$last"; then
        return 2
    fi
    return $((rc == 0 ? 0 : 1))
}

# Waits (at most 90 s) for the cluster, and the model server, to answer again after a crash.
wait_up() {
    local i
    for ((i = 0; i < 450; i++)); do
        if [ "$(psql -d $db -tA -c "SELECT 1" 2>/dev/null)" = 1 ]; then
            [ "$first_mode" != server ] && return 0
            [ "$(psql -d $db -tA -c "SELECT count(*) > 0 FROM synth_model_server WHERE pid > 0" 2>/dev/null)" = t ] && return 0
        fi
        sleep 0.2
    done
    fail "the cluster did not come back after a crash"
}

findings=()
skipped=()
crashes=0
label_of() {
    case $2 in
    inputs) q "SELECT label FROM fuzz_inputs WHERE id = $1" ;;
    ckpts) q "SELECT label FROM fuzz_ckpts WHERE id = $1" ;;
    *) q "SELECT label FROM fuzz_cases WHERE id = $1" ;;
    esac
}

# Runs fn over ids lo..hi in mode; a batch that fails is run again one id a connection.
run_range() {
    local mode=$1 fn=$2 src=$3 lo=$4 hi=$5 id rc in_fn=0
    run_once "$mode" "$fn" "$lo" "$hi" 120 && return 0
    rc=$?
    [ $rc = 2 ] && wait_up
    for ((id = lo; id <= hi; id++)); do
        if [ $in_fn -ge 3 ] || [ $crashes -ge 12 ]; then
            findings+=("SKIPPED $mode $fn ids $id..$hi after $in_fn crashes")
            return 0
        fi
        run_once "$mode" "$fn" "$id" "$id" 30 && continue
        rc=$?
        if [ $rc = 2 ]; then
            crashes=$((crashes + 1)) in_fn=$((in_fn + 1))
            findings+=("CRASH (connection lost) mode=$mode fn=$fn input=$(label_of "$id" "$src" 2>/dev/null || echo "#$id"): $(tr '\n' ' ' <<<"$last" | cut -c1-300)")
            wait_up
        else
            findings+=("UNCAUGHT mode=$mode fn=$fn input=$(label_of "$id" "$src"): $(tr '\n' ' ' <<<"$last" | cut -c1-300)")
        fi
    done
}

parts="setup $(($(date +%s) - started))"
for mode in "${modes[@]}"; do
    part=$(date +%s)
    while IFS='|' read -r fn src once; do
        [ "$once" = t ] && [ "$mode" != "$first_mode" ] && continue
        read -r lo hi < <(q "SELECT coalesce(min(id), 0), coalesce(max(id), -1) FROM (
            SELECT id FROM fuzz_inputs WHERE '$src' = 'inputs' UNION ALL SELECT id FROM fuzz_ckpts WHERE '$src' = 'ckpts'
            UNION ALL SELECT id FROM fuzz_cases WHERE '$src' = 'cases' AND family = '$fn') i" | tr '|' ' ')
        for ((b = lo; b <= hi; b += batch_size)); do
            if [ $(($(date +%s) - started)) -gt "$budget" ]; then
                skipped+=("$mode:$fn:$b")
                continue
            fi
            run_range "$mode" "$fn" "$src" "$b" $((b + batch_size - 1 < hi ? b + batch_size - 1 : hi))
        done
    done < <(q "SELECT fn, src, once FROM fuzz_fns ORDER BY src DESC, fn")
    parts="$parts, $mode mode $(($(date +%s) - part))"
done
part=$(date +%s)

# synth_train: options out of range are refused up front; a job that starts ends succeeded or
# failed (never with its worker crashed); one runs at a time (synthsearch.max_jobs).
train_refused=0 train_jobs=()
while IFS= read -r opts; do
    [ -n "$opts" ] || continue
    out=$(q "SELECT array_to_string(fuzz_try(\$\$SELECT synth_train('fuzz_images', 'fuzz_pairs', \$2::jsonb)\$\$, NULL, \$j\$$opts\$j\$), ' ')" 2>&1) \
        || { findings+=("TRAIN call lost: $opts: $out"); wait_up; continue; }
    case $out in
    22023* | 22004* | 22P02* | 42704*) train_refused=$((train_refused + 1)) ;;
    *) findings+=("TRAIN not refused with 22023: $opts: $out") ;;
    esac
done <<EOF
{"image_size": 0, "steps": 2}
{"image_size": 3, "steps": 2}
{"image_size": 1000, "steps": 2}
{"image_size": 2048, "steps": 2}
{"image_size": 2147483648, "steps": 2}
{"image_size": -1, "steps": 2}
{"image_size": "16", "steps": 2}
{"image_size": 16.5, "steps": 2}
{"image_size": null, "steps": 2}
{"batch": 0, "steps": 2}
{"batch": 1, "steps": 2}
{"batch": 65537, "steps": 2}
{"batch": 1099511627776, "steps": 2}
{"batch": -1, "steps": 2}
{"steps": 0}
{"steps": -1}
{"steps": 1e300}
{"embed_dim": 0, "steps": 2}
{"embed_dim": 100000, "steps": 2}
{"encoder_width": 0, "steps": 2}
{"encoder_width": 513, "steps": 2}
{"generator_width": 0, "steps": 2}
{"generator_width": 513, "steps": 2}
{"threads": 0, "steps": 2}
{"threads": 257, "steps": 2}
{"val_fraction": 0.9, "steps": 2}
{"val_fraction": -0.1, "steps": 2}
{"val_fraction": 1e308, "steps": 2}
{"max_pairs": 0, "steps": 2}
{"max_pairs": 10000001, "steps": 2}
{"progress_every": 0, "steps": 2}
{"checkpoint_every": 0, "steps": 2}
{"max_seconds": -1, "steps": 2}
{"eval_every": -1, "steps": 2}
{"name": "", "steps": 2}
{"name": "$(printf 'n%.0s' {1..201})", "steps": 2}
{"device": "tpu", "steps": 2}
{"base_model": -1, "steps": 2}
{"nope": 1, "steps": 2}
{"encoder": {"text": {"buckets": 15}}, "steps": 2}
{"generator": {"noise_dim": 0}, "steps": 2}
{"train": {"batch_size": 0}, "steps": 2}
[]
1
null
"x"
EOF

# Jobs that start (job), or may be refused up front instead (either): the smallest sizes; steps
# that overflow any sum (ended by max_seconds); huge evaluation sizes; a table with corrupt images
# (the job fails and says why); a text table of 256 GiB within every documented range.
while IFS='|' read -r kind images opts; do
    [ -n "$kind" ] || continue
    if ! job=$(psql -d $db -tA -v VERBOSITY=verbose -c "SELECT synth_train('$images', 'fuzz_pairs', '{$tiny}'::jsonb || '$opts'::jsonb)" 2>&1); then
        code=$(grep -o 'ERROR:  [0-9A-Z]\{5\}' <<<"$job" | cut -c9- | head -1)
        if [ "$kind" = either ] && [[ "$code" =~ ^(22023|54000|53200)$ ]]; then
            train_jobs+=("refused")
            echo "fuzz: synth_train $images $opts: refused ($code)"
        else
            findings+=("TRAIN job refused ($code): $images $opts: $(tr '\n' ' ' <<<"$job" | cut -c1-300)")
            grep -Eq 'server closed the connection|connection to server was lost' <<<"$job" && wait_up
        fi
        continue
    fi
    for ((i = 0; i < 300; i++)); do
        state=$(q "SELECT state FROM synth_jobs WHERE job = $job" 2>/dev/null || echo lost)
        case $state in succeeded | failed | cancelled) break ;; lost) wait_up ;; esac
        sleep 0.2
    done
    case $state in
    succeeded | failed) ;;
    *) q "SELECT synth_cancel($job)" >/dev/null 2>&1 || true
       findings+=("TRAIN job $job did not end in 60 s ($state): $images $opts") ;;
    esac
    error=$(q "SELECT coalesce(error, '') FROM synth_jobs WHERE job = $job")
    if grep -Eqi 'panick|overflow|internal error|unwrap|enforce fail' <<<"$error"; then
        findings+=("TRAIN job $job ($images $opts) failed with an internal error: $(cut -c1-300 <<<"$error")")
    fi
    if [ "$images" = fuzz_bad_images ] && [ "$state" != failed ]; then
        findings+=("TRAIN job $job on corrupt images ended $state, not failed")
    fi
    train_jobs+=("$state")
    echo "fuzz: synth_train $images $opts: $state${error:+ ($(cut -c1-160 <<<"$error"))}"
done <<EOF
$huge_job
job|fuzz_images|{"image_size": 16, "batch": 2, "embed_dim": 1, "encoder_width": 1, "generator_width": 1, "steps": 3, "val_fraction": 0, "max_pairs": 1}
job|fuzz_images|{"encoder_steps": 9223372036854775807, "gan_steps": 9223372036854775807, "max_seconds": 1}
job|fuzz_images|{"steps": 2, "eval_queries": 1000000000, "eval_sample": 1000000000, "max_pairs": 10000000}
job|fuzz_bad_images|{"steps": 2}
EOF
parts="$parts, synth_train $(($(date +%s) - part))"

# Verdicts: SQLSTATEs outside what each function may give, and expected ones not given; one line
# an input and verdict, with the modes and functions that gave it.
while IFS= read -r line; do
    [ -n "$line" ] && findings+=("$line")
done < <(q "WITH expected AS (
                SELECT id, 'cases' AS src, family AS fn, expect FROM fuzz_cases WHERE expect IS NOT NULL
                UNION ALL
                SELECT i.id, 'inputs', f.fn, CASE
                    WHEN i.label ~ ':ok$' THEN 'ok'
                    WHEN d[1]::numeric > 8192 OR d[2]::numeric > 8192 OR d[1]::numeric * d[2]::numeric > 40000000 THEN '54000'
                    WHEN d[1]::numeric = 0 OR d[2]::numeric = 0 OR i.label = 'magic:empty' THEN '22P03' END
                  FROM fuzz_inputs i
                  LEFT JOIN LATERAL regexp_match(i.label, '^(?:png-ihdr|jpeg-sof|webp-x):(?:vp8l-|vp8-|vp8x-canvas-)?([0-9]+)x([0-9]+)$') d ON true,
                  fuzz_fns f WHERE f.src = 'inputs' AND f.fn <> 'import'),
            bad AS (
                SELECT r.*, format('SQLSTATE %s, allowed %s', r.state, f.allowed) AS verdict
                  FROM fuzz_results r JOIN fuzz_fns f USING (fn) WHERE r.state !~ f.allowed
                UNION ALL
                SELECT r.*, format('expected %s, got %s', e.expect, r.state)
                  FROM fuzz_results r JOIN fuzz_fns f USING (fn) JOIN expected e ON e.id = r.id AND e.fn = r.fn AND e.src = f.src
                 WHERE r.state <> e.expect AND r.state ~ f.allowed)
            SELECT format('%s: input %s (%s): %s', verdict, label, string_agg(DISTINCT mode || ' ' || fn, ', '), min(message))
              FROM bad GROUP BY verdict, label ORDER BY verdict, label" | tr -d '\r')

# The postmaster never restarted: same start time, same checkpointer, nothing in the log.
postmaster1=$(psql -d postgres -tA -c "SELECT pg_postmaster_start_time()")
checkpointer1=$(psql -d postgres -tA -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'")
[ "$postmaster1" = "$postmaster0" ] || findings+=("POSTMASTER restarted: start time $postmaster0 -> $postmaster1")
[ "$checkpointer1" = "$checkpointer0" ] || findings+=("POSTMASTER reinitialized after a crash: checkpointer $checkpointer0 -> $checkpointer1")
while IFS= read -r line; do
    [ -n "$line" ] && findings+=("LOG $line")
done < <(log_since "$log0" | grep -E 'terminated by signal|server process .* was terminated|PANIC|all server processes terminated' | head -20)

summary=$(q "SELECT string_agg(format('%s calls in %s mode', n, mode), ', ' ORDER BY mode DESC) FROM (SELECT mode, count(*) n FROM fuzz_results GROUP BY mode) m")
states=$(q "SELECT '{' || string_agg(format('%s: %s', state, n), ', ' ORDER BY n DESC, state) || '}' FROM (SELECT state, count(*) n FROM fuzz_results GROUP BY state) s")
slowest=$(q "SELECT string_agg(format('%s %s %s %s ms', mode, fn, label, round(ms::numeric)), '; ') FROM (SELECT * FROM fuzz_results ORDER BY ms DESC LIMIT 3) s")
echo "fuzz: seconds: $parts; slowest calls: $slowest"
[ ${#skipped[@]} = 0 ] || echo "fuzz: the time budget of $budget s ran out: skipped ${#skipped[@]} batches (${skipped[*]})"
if [ ${#findings[@]} -gt 0 ]; then
    printf 'fuzz: FINDING %s\n' "${findings[@]}" >&2
    echo "fuzz: $summary, sqlstates $states, synth_train: $train_refused refused, jobs ${train_jobs[*]}; ${#findings[@]} findings, $crashes crashes ($(($(date +%s) - started)) s)" >&2
    fail "${#findings[@]} findings (above)"
fi
echo "fuzz: $summary, sqlstates $states, synth_train: $train_refused refused, jobs ${train_jobs[*]}; postmaster unchanged ($(($(date +%s) - started)) s)"
