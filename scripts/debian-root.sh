#!/usr/bin/env bash
# A Debian root of another release, for a PostgreSQL major that this machine's Debian does not ship
# (bookworm has PostgreSQL 15; trixie, Debian 13, has 17). Made with debootstrap from the Debian
# mirror apt uses here; this checkout, the Rust toolchain (rustup's folder) and cargo's home (its
# registry cache and cargo-pgrx) are mounted into it, so a command there builds this checkout with
# the same toolchain, into target/RELEASE. Run as root.
#   debian-root.sh make RELEASE ROOT          debootstrap ROOT when it has no system yet (a minute or two)
#   debian-root.sh mount RELEASE ROOT         mount the checkout, toolchain, /proc, /dev and /sys into ROOT
#   debian-root.sh run RELEASE ROOT COMMAND   run COMMAND (bash) in the checkout inside ROOT, mounting
#                                             first if needed and unmounting after if it mounted
#   debian-root.sh umount RELEASE ROOT        unmount everything mount did (a server still running
#                                             inside keeps what it has open)
# Mounts are never left behind by `run`: a root that holds a bind mount of the checkout must not be
# removed with rm -rf, which would follow the mount into the checkout; `umount` first.
set -euo pipefail
cmd=${1:?usage: debian-root.sh make|mount|run|umount RELEASE ROOT [COMMAND]}
release=${2:?give the Debian release, e.g. trixie}
root=${3:?give the root folder}
src=$(cd "$(dirname "$0")/.." && pwd)

[ "$(id -u)" -eq 0 ] || { echo "debian-root.sh: run as root (debootstrap, mount and chroot need it)" >&2; exit 1; }

# The Debian mirror apt uses here (deb822 sources first, then sources.list), or Debian's own.
mirror() {
    local m
    m=$(awk '/^URIs:/ && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    [ -n "$m" ] || m=$(awk '$1 == "deb" && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
    echo "${m:-http://deb.debian.org/debian}"
}

make_root() {
    if [ -x "$root/bin/bash" ] && [ -f "$root/etc/debian_version" ]; then
        return 0
    fi
    command -v debootstrap >/dev/null || {
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    }
    mkdir -p "$root"
    echo "debian-root: debootstrap $release into $root from $(mirror)" >&2
    debootstrap --variant=minbase \
        --include=ca-certificates,git,make,gcc,g++,python3,python3-venv,python3-pip,curl,procps,sudo \
        "$release" "$root" "$(mirror)" >"$root.debootstrap.log" 2>&1 || {
        tail -n 20 "$root.debootstrap.log" >&2
        return 1
    }
    # A root made under mktemp -d is 0700, which locks out every other user inside (apt, postgres).
    chmod 755 "$root"
    seed_venv
}

# torch's wheel brings 2.7 GB of CUDA runtime libraries (nvidia-*: built for any Python 3, so the
# same files serve the root's Python). When this machine's environment has them, the root's
# environment gets hard links to them before its set-up installs torch, which then finds them
# installed and downloads only what depends on the Python version. Anything else: pip downloads.
seed_venv() {
    local host_venv=${SYNTHSEARCH_VENV:-/opt/synthsearch/venv} venv=/opt/synthsearch/venv host_site root_site
    host_site=$(ls -d "$host_venv"/lib/python3*/site-packages 2>/dev/null | head -n 1)
    [ -n "$host_site" ] && [ -d "$host_site/nvidia" ] && [ ! -e "$root$venv" ] || return 0
    chroot "$root" /usr/bin/python3 -m venv "$venv" || return 0
    root_site=$(ls -d "$root$venv"/lib/python3*/site-packages | head -n 1)
    if cp -al "$host_site"/nvidia "$host_site"/nvidia_*.dist-info "$root_site"/ 2>/dev/null; then
        echo "debian-root: $root$venv shares the CUDA runtime libraries of $host_venv (hard links)" >&2
    else
        rm -rf "$root_site"/nvidia "$root_site"/nvidia_*.dist-info
    fi
}

# Mount points, in mount order.
points=(proc dev sys src root/.rustup root/.cargo)

mounted() { mountpoint -q "$root/$1"; }

do_mount() {
    [ -x "$root/bin/bash" ] || { echo "debian-root.sh: no root at $root (make it first)" >&2; exit 1; }
    # Name resolution, the certificate authorities and pip's settings, as this machine has them.
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    cp /etc/hosts "$root/etc/hosts"
    grep -qw "$(hostname)" "$root/etc/hosts" || echo "127.0.1.1 $(hostname)" >>"$root/etc/hosts"
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
    if [ -f /etc/pip.conf ]; then cp /etc/pip.conf "$root/etc/pip.conf"; fi
    local d
    for d in "${RUSTUP_HOME:-$HOME/.rustup}" "${CARGO_HOME:-$HOME/.cargo}"; do
        [ -d "$d" ] || { echo "debian-root.sh: no $d: the root borrows this machine's rustup toolchain and cargo home" >&2; exit 1; }
    done
    mkdir -p "$root/src" "$root/root/.rustup" "$root/root/.cargo"
    mounted proc || mount -t proc proc "$root/proc"
    mounted dev || { mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev"; }
    mounted sys || { mount --rbind /sys "$root/sys" && mount --make-rslave "$root/sys"; }
    mounted src || mount --bind "$src" "$root/src"
    mounted root/.rustup || mount --bind "${RUSTUP_HOME:-$HOME/.rustup}" "$root/root/.rustup"
    mounted root/.cargo || mount --bind "${CARGO_HOME:-$HOME/.cargo}" "$root/root/.cargo"
}

do_umount() {
    local i p
    for ((i = ${#points[@]} - 1; i >= 0; i--)); do
        p=${points[i]}
        if mounted "$p"; then
            umount -R "$root/$p" 2>/dev/null || umount -R -l "$root/$p"
        fi
    done
}

run() {
    local command=$1 we_mounted=0 rc=0
    mounted src || { do_mount; we_mounted=1; }
    chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" \
        PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        CARGO_TARGET_DIR="/src/target/$release" ${CARGO_INCREMENTAL:+CARGO_INCREMENTAL=$CARGO_INCREMENTAL} CI="${CI:-}" CITUS_TARBALL="${CITUS_TARBALL_IN_ROOT:-}" \
        SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
        /bin/bash -c "cd /src && $command" || rc=$?
    if [ "$we_mounted" = 1 ]; then do_umount; fi
    return $rc
}

case "$cmd" in
make) make_root ;;
mount) do_mount ;;
umount) do_umount ;;
run) run "${4:?give the command}" ;;
*) echo "debian-root.sh: unknown command $cmd" >&2; exit 2 ;;
esac
