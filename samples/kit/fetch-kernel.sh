#!/usr/bin/env bash
# fetch-kernel.sh: fetch Debian's current amd64 guest kernel WITHOUT installing it.
#
# Resolves the versioned package behind linux-image-amd64 (e.g. linux-image-6.1.0-56-amd64),
# downloads it with `apt-get download` and unpacks it with `dpkg-deb -x` into
#   $CACHE/linux-<kernelrelease>/      (boot/vmlinuz-*, lib/modules/<kernelrelease>/...)
# and points the symlink $CACHE/kernel at it.
#
# Usage: fetch-kernel.sh [--refresh]
#   --refresh   resolve and fetch the newest packaged kernel even if one is cached
# Environment:
#   CORONER_KIT_DIR   cache dir (default: $HOME/.cache/coroner-kit)
#
# Idempotent: if $CACHE/kernel already holds a boot/vmlinuz-*, it does nothing (works offline).
# `apt-get update` runs only when the package can't be resolved or downloaded.
# Prints the kernel dir ($CACHE/linux-<kernelrelease>) on stdout; progress goes to stderr.
set -euo pipefail

CACHE="${CORONER_KIT_DIR:-$HOME/.cache/coroner-kit}"
META_PKG=linux-image-amd64

log() { printf 'fetch-kernel: %s\n' "$*" >&2; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { log "error: $*"; exit 1; }

refresh=0
while (($#)); do
    case "$1" in
        --refresh) refresh=1 ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument: $1" ;;
    esac
    shift
done

# has_vmlinuz DIR: true if DIR/boot holds a vmlinuz-*.
has_vmlinuz() {
    local f
    for f in "$1"/boot/vmlinuz-*; do
        [[ -f "$f" ]] && return 0
    done
    return 1
}

# cached: print the cached kernel dir and succeed, if there is one.
cached() {
    ((!refresh)) && [[ -L "$CACHE/kernel" ]] && has_vmlinuz "$CACHE/kernel" || return 1
    local target
    target="$(readlink "$CACHE/kernel")"
    log "cached: $target"
    printf '%s\n' "$CACHE/$target"
}

cached && exit 0
# Serialize concurrent runs (parallel tests), then look again.
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
cached && exit 0

command -v apt-get >/dev/null || die "apt-get not found (this kit needs a Debian-like host)"
command -v dpkg-deb >/dev/null || die "dpkg-deb not found"

apt_update() {
    if ((EUID != 0)); then
        die "apt lists are missing or stale and updating them needs root: run 'apt-get update' as root"
    fi
    log "running apt-get update"
    apt-get update >&2
}

# resolve_pkg: print the versioned image package linux-image-amd64 depends on.
resolve_pkg() {
    apt-cache depends "$META_PKG" 2>/dev/null |
        awk '$1 ~ /^\|?Depends:$/ && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

pkg="$(resolve_pkg || true)"
if [[ -z "$pkg" ]]; then
    apt_update
    pkg="$(resolve_pkg || true)"
    [[ -n "$pkg" ]] || die "cannot resolve the package behind $META_PKG (is a Debian main source configured?)"
fi
log "package: $pkg"

# link_kernel RELEASE: point $CACHE/kernel at linux-RELEASE, atomically.
link_kernel() {
    local tmp_link
    tmp_link="$CACHE/.kernel.link.$$"
    ln -sfn "linux-$1" "$tmp_link"
    mv -T "$tmp_link" "$CACHE/kernel"
}

# The package is named after the kernel release: skip the download if it is already unpacked.
if has_vmlinuz "$CACHE/linux-${pkg#linux-image-}"; then
    link_kernel "${pkg#linux-image-}"
    log "already unpacked: $CACHE/linux-${pkg#linux-image-}"
    printf '%s\n' "$CACHE/linux-${pkg#linux-image-}"
    exit 0
fi
work="$(mktemp -d "$CACHE/.fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# As root, apt-get download drops to the _apt user, which can't write into a private cache
# dir (e.g. under /root); download as root instead of warning about it.
apt_opts=()
((EUID != 0)) || apt_opts=(-o APT::Sandbox::User=root)

download() { (cd "$work" && apt-get "${apt_opts[@]}" download "$pkg" >&2); }
if ! download; then
    # The lists may name a version the mirror no longer has.
    apt_update
    pkg="$(resolve_pkg || true)"
    [[ -n "$pkg" ]] || die "cannot resolve the package behind $META_PKG after apt-get update"
    download || die "apt-get download $pkg failed"
fi

debs=("$work"/*.deb)
[[ -f "${debs[0]}" ]] || die "apt-get download produced no .deb"
log "unpacking $(basename "${debs[0]}")"
dpkg-deb -x "${debs[0]}" "$work/root"

# The kernel release is the lib/modules/<release> directory name (it also names vmlinuz-<release>).
release=""
for d in "$work"/root/lib/modules/*/; do
    [[ -d "$d" ]] || continue
    release="$(basename "$d")"
    break
done
[[ -n "$release" ]] || die "package $pkg has no lib/modules/<release> directory"
has_vmlinuz "$work/root" || die "package $pkg has no boot/vmlinuz-*"

dest="$CACHE/linux-$release"
if has_vmlinuz "$dest"; then
    log "already unpacked: $dest"
else
    rm -rf "$dest"
    mv "$work/root" "$dest"
fi

link_kernel "$release"
log "kernel $release ready in $dest"
printf '%s\n' "$dest"
