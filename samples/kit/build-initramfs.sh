#!/usr/bin/env bash
# build-initramfs.sh: build the guest initramfs $CACHE/initramfs.cpio.gz (newc cpio, gzip).
#
# Contents: /bin/busybox (from busybox-static), /init (the `init` script next to this file),
# the kit's test module coroner_fault.ko when build-module.sh built it, and the kernel
# modules the scenarios need, copied flat into /lib/modules/ from the kernel
# that fetch-kernel.sh unpacked into $CACHE/kernel. Modules are found by name (their paths
# move between kernel series); compressed ones (.ko.xz/.ko.zst/.ko.gz) are decompressed to
# plain .ko, which busybox insmod loads. Missing optional modules are reported and skipped.
#
# Usage: build-initramfs.sh [--force]
#   --force   rebuild even if the output is up to date
# Environment:
#   CORONER_KIT_DIR   cache dir (default: $HOME/.cache/coroner-kit)
#   BUSYBOX           static busybox to pack (default: /bin/busybox)
#
# Rebuilds only when an input (busybox, init, this script, the kernel's module tree) is newer
# than the output or the cached kernel changed. Prints the initramfs path on stdout; progress
# goes to stderr.
set -euo pipefail

CACHE="${CORONER_KIT_DIR:-$HOME/.cache/coroner-kit}"
BUSYBOX="${BUSYBOX:-/bin/busybox}"
KIT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
INIT="$KIT_DIR/init"
OUT="$CACHE/initramfs.cpio.gz"
# The kit's own test module (build-module.sh), packed when built.
TEST_MODULE="$CACHE/coroner_fault.ko"
STAMP="$CACHE/initramfs.kernel"

# Modules to pack, by module file name (without .ko). The guest's init loads them in its own
# dependency order; a module listed here that the kernel lacks (or has built in) is skipped.
REQUIRED_MODULES=(pvpanic qemu_fw_cfg)
OPTIONAL_MODULES=(
    pvpanic-mmio
    virtio virtio_ring virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk
    watchdog i6300esb
    virtio-rng
)

log() { printf 'build-initramfs: %s\n' "$*" >&2; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { log "error: $*"; exit 1; }

force=0
while (($#)); do
    case "$1" in
        --force) force=1 ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument: $1" ;;
    esac
    shift
done

[[ -L "$CACHE/kernel" && -d "$CACHE/kernel/" ]] ||
    die "no kernel in $CACHE/kernel: run fetch-kernel.sh (or ensure.sh) first"
kdir="$(cd "$CACHE/kernel/" && pwd -P)"
release=""
for d in "$kdir"/lib/modules/*/; do
    [[ -d "$d" ]] || continue
    release="$(basename "$d")"
    break
done
[[ -n "$release" ]] || die "no lib/modules/<release> under $kdir"
moddir="$kdir/lib/modules/$release"

[[ -f "$INIT" ]] || die "missing guest init script: $INIT"
[[ -x "$BUSYBOX" ]] || die "missing $BUSYBOX: install busybox-static (or run ensure.sh)"
# A dynamically linked busybox can't run in an initramfs without libc; a dynamic x86-64
# glibc binary names its loader in .interp (checked without needing file(1) or binutils).
if LC_ALL=C grep -aq '/lib64/ld-linux-x86-64.so' "$BUSYBOX"; then
    die "$BUSYBOX is dynamically linked: install busybox-static (or set BUSYBOX=)"
fi
command -v cpio >/dev/null || die "cpio not found: apt-get install cpio"
command -v gzip >/dev/null || die "gzip not found"

# test_module_state: whether the test module for this kernel is there to pack (a module
# built or removed since the last build changes it, and so rebuilds).
test_module_state() {
    if [[ -f "$TEST_MODULE" && "$(cat "$TEST_MODULE.release" 2>/dev/null)" == "$release" ]]; then
        echo with-test-module
    else
        echo without-test-module
    fi
}

# up_to_date: the output exists, was built for this kernel, and no input is newer.
up_to_date() {
    [[ -f "$OUT" && -f "$STAMP" ]] || return 1
    [[ "$(cat "$STAMP")" == "$kdir $(test_module_state)" ]] || return 1
    local input
    for input in "$BUSYBOX" "$INIT" "${BASH_SOURCE[0]}" "$moddir" "$TEST_MODULE"; do
        [[ -e "$input" ]] || continue
        [[ "$input" -nt "$OUT" ]] && return 1
    done
    return 0
}

# Serialize concurrent runs (parallel tests); a second caller then finds the output fresh.
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
if ((!force)) && up_to_date; then
    log "up to date: $OUT"
    printf '%s\n' "$OUT"
    exit 0
fi

tmp_out=""
stage="$(mktemp -d "${TMPDIR:-/tmp}/coroner-initramfs.XXXXXX")"
trap 'rm -rf "$stage"; [[ -z "$tmp_out" ]] || rm -f "$tmp_out"' EXIT
mkdir -p "$stage"/{bin,sbin,dev,proc,sys,tmp,run,root,etc,lib/modules}
cp "$BUSYBOX" "$stage/bin/busybox"
cp "$INIT" "$stage/init"
chmod 0755 "$stage/init" "$stage/bin/busybox"
# The kernel opens /dev/console for init before init can mount devtmpfs. Debian's kernels
# have one in their built-in initramfs; add one anyway when we may (mknod needs root), and
# init re-opens the console itself after mounting devtmpfs.
if ((EUID == 0)); then
    mknod -m 0600 "$stage/dev/console" c 5 1
fi

# copy_module NAME: find NAME.ko[.xz|.zst|.gz] and store it as plain /lib/modules/NAME.ko.
copy_module() {
    local name="$1" src
    src="$(find "$moddir" \( -name "$name.ko" -o -name "$name.ko.xz" -o -name "$name.ko.zst" \
        -o -name "$name.ko.gz" \) -print -quit)"
    [[ -n "$src" ]] || return 1
    local dst="$stage/lib/modules/$name.ko"
    case "$src" in
        *.ko) cp "$src" "$dst" ;;
        *.ko.xz) xz -dc "$src" >"$dst" ;;
        *.ko.zst) zstd -qdc "$src" >"$dst" ;;
        *.ko.gz) gzip -dc "$src" >"$dst" ;;
    esac
    log "module $name <- ${src#"$moddir"/}"
}

builtin_module() { grep -q "/$1\.ko\$" "$moddir/modules.builtin" 2>/dev/null; }

for m in "${REQUIRED_MODULES[@]}"; do
    copy_module "$m" || builtin_module "$m" || die "kernel $release has no module $m"
done
for m in "${OPTIONAL_MODULES[@]}"; do
    copy_module "$m" || log "module $m not in kernel $release (skipped)"
done
if [[ "$(test_module_state)" == with-test-module ]]; then
    cp "$TEST_MODULE" "$stage/lib/modules/coroner_fault.ko"
    log "module coroner_fault <- $TEST_MODULE"
else
    log "no test module for $release (build-module.sh): coroner.run=oops|spin unavailable"
fi
printf '%s\n' "$release" >"$stage/etc/kernel-release"

tmp_out="$(mktemp "$CACHE/.initramfs.XXXXXX")"
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) |
    gzip -9n >"$tmp_out"
chmod 0644 "$tmp_out"
mv -f "$tmp_out" "$OUT"
printf '%s %s\n' "$kdir" "$(test_module_state)" >"$STAMP"
log "wrote $OUT ($(stat -c %s "$OUT") bytes, kernel $release)"
printf '%s\n' "$OUT"
