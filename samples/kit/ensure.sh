#!/usr/bin/env bash
# ensure.sh: make the guest kit usable on a bare Debian machine, idempotently.
#
# 1. If qemu-system-x86_64, a static /bin/busybox (busybox-static), zstd, xz, cpio, tmux
#    (the terminal-UI test drives coroner tui in it) or systemd-analyze (verifies the
#    contrib unit) is missing: as root, apt-get update + apt-get install -y qemu-system-x86
#    busybox-static zstd xz-utils cpio tmux systemd; as another user, fail and say what
#    to install. makedumpfile (the kdump tests rearrange qemu's flattened dumps with it)
#    is installed the same way, without its recommends (crash, kexec-tools).
# 2. fetch-kernel.sh: the Debian guest kernel, unpacked into $CACHE/kernel (not installed).
# 3. build-module.sh: the test module coroner_fault.ko against the kernel's headers
#    (linux-headers-<release>, installed by apt-get as root).
# 4. build-initramfs.sh: $CACHE/initramfs.cpio.gz; build-kdump.sh: the kdump scenario's
#    $CACHE/initramfs-kdump.cpio.gz (the guest kernel, a capture initramfs, a static
#    loader built with cc).
# Prints the cache dir on stdout; progress goes to stderr. A warm cache needs no network.
#
# Usage: ensure.sh
# Environment:
#   CORONER_KIT_DIR   cache dir (default: $HOME/.cache/coroner-kit)
set -euo pipefail

CACHE="${CORONER_KIT_DIR:-$HOME/.cache/coroner-kit}"
KIT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PACKAGES=(qemu-system-x86 busybox-static zstd b3sum xz-utils cpio tmux systemd make)

log() { printf 'ensure: %s\n' "$*" >&2; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { log "error: $*"; exit 1; }

case "${1:-}" in
    "") ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument: $1" ;;
esac

# busybox_static: /bin/busybox comes from busybox-static (the plain busybox package's binary
# is dynamically linked and can't run in the initramfs).
busybox_static() {
    [[ -x /bin/busybox ]] || return 1
    [[ "$(dpkg-query -W -f='${Status}' busybox-static 2>/dev/null)" == "install ok installed" ]]
}

missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86_64)
busybox_static || missing+=("busybox-static")
command -v zstd >/dev/null || missing+=(zstd)
command -v b3sum >/dev/null || missing+=(b3sum)
command -v xz >/dev/null || missing+=(xz)
command -v cpio >/dev/null || missing+=(cpio)
command -v tmux >/dev/null || missing+=(tmux)
command -v systemd-analyze >/dev/null || missing+=(systemd-analyze)
command -v make >/dev/null || missing+=(make)

if ((${#missing[@]})); then
    if ((EUID != 0)); then
        die "missing ${missing[*]}: as root run: apt-get install ${PACKAGES[*]}"
    fi
    log "missing ${missing[*]}: installing ${PACKAGES[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update >&2
    apt-get install -y "${PACKAGES[@]}" >&2
fi
if ! command -v makedumpfile >/dev/null; then
    ((EUID == 0)) || die "missing makedumpfile: as root run: apt-get install --no-install-recommends makedumpfile"
    log "missing makedumpfile: installing it"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends makedumpfile >&2 ||
        { apt-get update >&2 && apt-get install -y --no-install-recommends makedumpfile >&2; }
fi

if ! command -v libvirtd >/dev/null || ! command -v virsh >/dev/null; then
    ((EUID == 0)) || die "missing libvirt: as root run: apt-get install --no-install-recommends libvirt-daemon-system libvirt-clients"
    log "missing libvirt: installing it"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends libvirt-daemon-system libvirt-clients >&2 ||
        { apt-get update >&2 && apt-get install -y --no-install-recommends libvirt-daemon-system libvirt-clients >&2; }
fi

# An S3-compatible server for the object-storage tests: moto's, from PyPI (Debian has
# no S3 server but the heavy radosgw).
if ! command -v moto_server >/dev/null; then
    log "missing moto_server: installing moto[server] from PyPI"
    python3 -m pip install --quiet 'moto[server]' >&2 ||
        die "cannot install moto[server] (python3 -m pip install 'moto[server]')"
    command -v moto_server >/dev/null || die "moto_server is not on PATH after pip install"
fi

export CORONER_KIT_DIR="$CACHE"
"$KIT_DIR/fetch-kernel.sh" >/dev/null
"$KIT_DIR/build-module.sh" >/dev/null
"$KIT_DIR/build-initramfs.sh" >/dev/null
"$KIT_DIR/build-kdump.sh" >/dev/null
printf '%s\n' "$CACHE"
