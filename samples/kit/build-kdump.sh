#!/usr/bin/env bash
# build-kdump.sh: the kit's initramfs for the kdump scenario, $CACHE/initramfs-kdump.cpio.gz:
# the kit's initramfs (build-initramfs.sh) followed by a second archive holding the guest
# kernel (/boot/vmlinuz), the capture kernel's initramfs (/boot/kdump-initrd.cpio.gz:
# busybox, kdump/init, the virtio disk modules) and /bin/load-crash-kernel
# (kdump/load-crash-kernel.c, built static with the host's cc). The kernel unpacks both
# archives. Boot it with boot.sh --initrd and coroner.run=kdump crashkernel=...
# Prints the output path on stdout; rebuilds only when an input changed.
#
# Usage: build-kdump.sh
# Environment:
#   CORONER_KIT_DIR   cache dir (default: $HOME/.cache/coroner-kit)
set -euo pipefail

CACHE="${CORONER_KIT_DIR:-$HOME/.cache/coroner-kit}"
KIT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BASE="$CACHE/initramfs.cpio.gz"
OUT="$CACHE/initramfs-kdump.cpio.gz"

log() { printf 'build-kdump: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ -f "$BASE" ]] || die "no $BASE: run build-initramfs.sh (or ensure.sh) first"
kernels=("$CACHE"/kernel/boot/vmlinuz-*)
[[ -f "${kernels[0]}" && ${#kernels[@]} -eq 1 ]] || die "want one kernel in $CACHE/kernel/boot"
command -v cc >/dev/null || die "no C compiler (cc) to build load-crash-kernel"

inputs=("$BASE" "${kernels[0]}" "$KIT_DIR/kdump/init" "$KIT_DIR/kdump/load-crash-kernel.c"
    "${BASH_SOURCE[0]}")
if [[ -f "$OUT" ]]; then
    stale=0
    for i in "${inputs[@]}"; do [[ "$i" -nt "$OUT" ]] && stale=1; done
    if ((!stale)); then
        log "up to date: $OUT"
        printf '%s\n' "$OUT"
        exit 0
    fi
fi

stage="$(mktemp -d "${TMPDIR:-/tmp}/coroner-kdump.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
# The capture kernel's initramfs: busybox and the virtio modules from the kit's own.
mkdir -p "$stage/capture" "$stage/extra/boot" "$stage/extra/bin"
(cd "$stage/capture" && gzip -dc "$BASE" | cpio -idm --quiet bin/busybox 'lib/modules/virtio*.ko')
mkdir -p "$stage/capture"/{dev,proc,sys}
cp "$KIT_DIR/kdump/init" "$stage/capture/init"
chmod 0755 "$stage/capture/init"
(cd "$stage/capture" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -9) \
    >"$stage/extra/boot/kdump-initrd.cpio.gz"
cp "${kernels[0]}" "$stage/extra/boot/vmlinuz"
cc -static -Os -o "$stage/extra/bin/load-crash-kernel" "$KIT_DIR/kdump/load-crash-kernel.c"
(cd "$stage/extra" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -1) >"$stage/extra.cpio.gz"
cat "$BASE" "$stage/extra.cpio.gz" >"$stage/out"
mv "$stage/out" "$OUT"
log "built $OUT ($(stat -c %s "$OUT") bytes)"
printf '%s\n' "$OUT"
