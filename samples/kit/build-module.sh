#!/usr/bin/env bash
# build-module.sh: build the kit's test module (module/coroner_fault.c) against the guest
# kernel's headers into $CACHE/coroner_fault.ko.
#
# The headers are Debian's linux-headers-<kernelrelease> package for the kernel that
# fetch-kernel.sh unpacked; as root it is installed with apt-get when missing (it installs
# only headers and kbuild scripts, no kernel). Rebuilds only when the source is newer than
# the output. Prints the module's path on stdout; progress goes to stderr.
#
# Usage: build-module.sh
# Environment:
#   CORONER_KIT_DIR   cache dir (default: $HOME/.cache/coroner-kit)
set -euo pipefail

CACHE="${CORONER_KIT_DIR:-$HOME/.cache/coroner-kit}"
KIT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="$KIT_DIR/module"
OUT="$CACHE/coroner_fault.ko"

log() { printf 'build-module: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
case "${1:-}" in
    "") ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) die "unknown argument: $1" ;;
esac

[[ -d "$CACHE/kernel/" ]] || die "no kernel in $CACHE/kernel: run fetch-kernel.sh first"
release=""
for d in "$CACHE"/kernel/lib/modules/*/; do
    [[ -d "$d" ]] && release="$(basename "$d")" && break
done
[[ -n "$release" ]] || die "no lib/modules/<release> under $CACHE/kernel"

if [[ -f "$OUT" && "$OUT" -nt "$SRC/coroner_fault.c" && "$OUT" -nt "$SRC/Kbuild" &&
    "$(cat "$OUT.release" 2>/dev/null)" == "$release" ]]; then
    log "up to date: $OUT"
    printf '%s\n' "$OUT"
    exit 0
fi

headers="/usr/src/linux-headers-$release"
if [[ ! -f "$headers/Makefile" ]]; then
    ((EUID == 0)) || die "no $headers: as root run: apt-get install linux-headers-$release"
    log "installing linux-headers-$release"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "linux-headers-$release" >&2 || {
        apt-get update >&2
        apt-get install -y --no-install-recommends "linux-headers-$release" >&2
    }
fi
command -v make >/dev/null || die "make not found: apt-get install make"

mkdir -p "$CACHE"
work="$(mktemp -d "${TMPDIR:-/tmp}/coroner-module.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cp "$SRC/coroner_fault.c" "$SRC/Kbuild" "$work/"
make -s -C "$headers" M="$work" modules >&2
tmp="$(mktemp "$CACHE/.coroner_fault.XXXXXX")"
cp "$work/coroner_fault.ko" "$tmp"
printf '%s\n' "$release" >"$OUT.release"
mv -f "$tmp" "$OUT"
log "built $OUT for $release"
printf '%s\n' "$OUT"
