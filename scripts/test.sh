#!/usr/bin/env bash
# The whole test suite: format, lints, the core crates' tests, the pgrx tests (run as the OS user
# postgres), the pg_regress suite and the system tests against a cluster started here.
# Every stage runs; the last line sums them up and the exit status is non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
PG_MAJOR=${PG_MAJOR:-15}
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
PG_CONFIG=$PG_BIN/pg_config
STATE=$PWD/.synth
REGRESS_DIR=$STATE/regress
REGRESS_PORT=${REGRESS_PORT:-25339}
mkdir -p "$STATE"
log=$STATE/test.log
: >"$log"

passed=0 failed=0 failures=()
stage() {
    local name=$1; shift
    printf '\n==> %s\n' "$name"
    if "$@" 2>&1 | tee -a "$log" | tee "$STATE/stage.out"; then
        :
    else
        failures+=("$name")
    fi
    # Count what the runner reported (cargo test, pg_regress, the system tests), or the stage itself.
    local p f
    read -r p f < <(awk '
        /^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
        /^ok [0-9-]/ || /[.][.][.] ok/ { p++ }
        /^not ok [0-9-]/ || /[.][.][.] FAILED/ { f++ }
        END { print p + 0, f + 0 }' "$STATE/stage.out")
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
        p=1
    fi
    if [[ " ${failures[*]-} " == *" $name "* ]] && [ "$f" -eq 0 ]; then f=1 p=$((p > 0 ? p - 1 : 0)); fi
    passed=$((passed + p)) failed=$((failed + f))
}

regress() {
    # Never `cargo pgrx install` (in place): a demo cluster may be running on this library.
    bash scripts/install.sh --debug >/dev/null || return 1
    bash scripts/cluster.sh stop "$REGRESS_DIR" immediate
    rm -rf "$REGRESS_DIR"
    # Preloaded, so the launcher resumes training jobs after a restart (tests/system/worker_resume.sh).
    bash scripts/cluster.sh start "$REGRESS_DIR" "$REGRESS_PORT" "shared_preload_libraries = 'synthsearch'" || return 1
    # The next free port if REGRESS_PORT was taken (another checkout's cluster): the system tests use it too.
    REGRESS_PORT=$(bash scripts/cluster.sh port "$REGRESS_DIR")
    local tests status
    tests=$(sed -e 's/#.*//' -e '/^$/d' sql-tests/schedule)
    rm -rf "$STATE/regress-out" && mkdir -p "$STATE/regress-out"
    "$($PG_CONFIG --pkglibdir)/pgxs/src/test/regress/pg_regress" \
        --bindir="$PG_BIN" --inputdir=sql-tests --outputdir="$STATE/regress-out" \
        --host=localhost --port="$REGRESS_PORT" --user=postgres --dbname=synthsearch_regress \
        $tests
    status=$?
    [ $status -ne 0 ] && cat "$STATE/regress-out/regression.diffs" 2>/dev/null | head -200
    # pg_regress prints "ok N - name" lines in TAP style from PostgreSQL 16 on; 15 prints "name ... ok".
    return $status
}

system_tests() {
    local t rc=0
    REGRESS_PORT=$(bash scripts/cluster.sh port "$REGRESS_DIR" "$REGRESS_PORT")
    # Citus for tests/system/citus.sh, built from its source tarball when one is named (skipped otherwise).
    if [ -n "${CITUS_TARBALL:-}" ]; then
        if bash scripts/citus.sh "$CITUS_TARBALL"; then echo "ok - citus build"; else echo "not ok - citus build"; rc=1; fi
    fi
    for t in tests/system/*.sh; do
        if REGRESS_PORT=$REGRESS_PORT REGRESS_DIR=$REGRESS_DIR bash "$t"; then
            echo "ok - $(basename "$t")"
        else
            echo "not ok - $(basename "$t")"
            rc=1
        fi
    done
    bash scripts/cluster.sh stop "$REGRESS_DIR"
    return $rc
}

pgrx_tests() {
    # pgrx creates the cluster inside this folder as the OS user postgres.
    rm -rf "$STATE/pgrx-test-data"
    mkdir -p "$STATE/pgrx-test-data"
    chown postgres: "$STATE/pgrx-test-data"
    # `cargo pgrx test` installs its test build with `cargo pgrx install`, which rewrites
    # synthsearch.so in place: a running server with the library mapped (a demo cluster) would crash,
    # and would then load the test build. So, where this user may (root with CAP_SYS_ADMIN, not in a
    # chroot), it runs in a private mount namespace in which the library and extension folders are
    # private copies; the regress stage installs this checkout's build properly afterwards.
    local lib ext priv=$STATE/pgrx-test-tree
    lib=$("$PG_CONFIG" --pkglibdir) ext=$("$PG_CONFIG" --sharedir)/extension
    if [ "$(id -u)" -eq 0 ] && unshare --mount --propagation private true 2>/dev/null; then
        rm -rf "$priv" && mkdir -p "$priv/lib" "$priv/extension"
        cp -a "$lib/." "$priv/lib/" && cp -a "$ext/." "$priv/extension/" || return 1
        chmod -R a+rX "$priv"
        unshare --mount --propagation private -- bash -c '
            set -e
            mount --bind "$1" "$2" && mount --bind "$3" "$4"
            shift 4
            exec "$@"' _ "$priv/lib" "$lib" "$priv/extension" "$ext" \
            cargo pgrx test "pg$PG_MAJOR" --runas postgres --pgdata "$STATE/pgrx-test-data"
    else
        # No private mount namespace (a chroot, a container): detach the installed library from
        # the servers that have it mapped first (a copy renamed over it: they keep the old file),
        # so the in-place rewrite only reaches a file that no running server has loaded before.
        echo "note: no private mount namespace here; cargo pgrx test installs into $lib"
        if [ -f "$lib/synthsearch.so" ]; then
            cp -p "$lib/synthsearch.so" "$lib/.synthsearch.so.detach.$$" && mv -f "$lib/.synthsearch.so.detach.$$" "$lib/synthsearch.so"
        fi
        cargo pgrx test "pg$PG_MAJOR" --runas postgres --pgdata "$STATE/pgrx-test-data"
    fi
}

stage "rustfmt" cargo fmt --all --check
stage "clippy" cargo clippy --workspace --all-targets --no-default-features --features "synthsearch/pg$PG_MAJOR" -- -D warnings
stage "core crates" cargo test --workspace --exclude synthsearch
stage "pgrx tests" pgrx_tests
stage "pg_regress" regress
stage "system tests" system_tests

echo
if [ ${#failures[@]} -gt 0 ]; then
    echo "failed stages: ${failures[*]}"
fi
echo "summary: $passed passed, $failed failed"
[ ${#failures[@]} -eq 0 ]
