#!/usr/bin/env bash
# A TorchScript encoder is code: a checkpoint that carries one runs in every backend and model
# server that uses it, with the rights of the server's operating system user. Importing one is
# for superusers: a model manager that is not one (a member of synthsearch_admin) is refused
# with 42501, a superuser imports it, and it encodes.
source "$(dirname "$0")/lib.bash"
db=torchscript_import
q() { psql -d $db -tA -c "$1"; }

export LIBTORCH_USE_PYTORCH=1 PATH=/opt/synthsearch/venv/bin:$HOME/.cargo/bin:$PATH
# The command line of this build (a Debian root of another release builds into its own target
# folder, whose binary links that root's libtorch).
synth=${CARGO_TARGET_DIR:-target}/debug/synth
[ -x "$synth" ] || cargo build -q -p synthsearch-model --bin synth
torchscript_encoder "$work/enc.pt" 4
# A tiny model on a generated catalog, its image encoder the module above.
"$synth" --threads 1 train --products 60 --torchscript "$work/enc.pt" --size 16 --embed-dim 16 \
    --generator-width 4 --critic-width 4 --batch 8 --encoder-steps 2 --gan-steps 2 --eval-queries 0 \
    --out "$work/script.ckpt" >"$work/train.out" 2>&1 || { cat "$work/train.out"; fail "training the TorchScript model failed"; }
chmod a+rx "$work" && chmod a+r "$work/script.ckpt"

psql -d postgres -q -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "DROP ROLE IF EXISTS script_manager" -c "CREATE DATABASE $db"
on_exit_do+=("psql -d postgres -c 'DROP DATABASE IF EXISTS $db WITH (FORCE)' -c 'DROP ROLE IF EXISTS script_manager' >/dev/null")
psql -d $db -q <<SQL
CREATE EXTENSION synthsearch;
CREATE ROLE script_manager LOGIN;
GRANT synthsearch_admin TO script_manager;
CREATE TABLE checkpoint AS SELECT pg_read_binary_file('$work/script.ckpt') AS bytes;
GRANT SELECT ON checkpoint TO script_manager;
SQL
out=$(psql -d $db -U script_manager -tA -v VERBOSITY=verbose -c "SELECT synth_model_import(bytes, 'scripted') FROM checkpoint" 2>&1 || true)
[[ "$out" == *42501*"TorchScript"* ]] || fail "a model manager that is not a superuser imported a TorchScript encoder: $out"
[ "$(q "SELECT count(*) FROM synth_models WHERE name = 'scripted'")" = 0 ] || fail "the refused import stored a model"
id=$(q "SELECT synth_model_import(bytes, 'scripted') FROM checkpoint")
[ "$(q "SELECT synth_encode(synth_generate('is red', '$id'), '$id') IS NOT NULL")" = t ] \
    || fail "the superuser's imported TorchScript model does not encode"
echo "torchscript_import: a model manager is refused (42501), a superuser imports model $id and it encodes"
