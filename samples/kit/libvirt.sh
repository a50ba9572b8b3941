#!/usr/bin/env bash
# libvirt.sh: start libvirt's daemons without systemd (virtlogd, then libvirtd), unless
# they already answer; then wait until `virsh -c qemu:///system version` works.
# Needs root and Debian's libvirt-daemon-system (ensure.sh installs it).
#
# Usage: libvirt.sh
set -euo pipefail

die() { printf 'libvirt.sh: error: %s\n' "$*" >&2; exit 1; }
command -v libvirtd >/dev/null || die "libvirtd not installed: run samples/kit/ensure.sh as root"
((EUID == 0)) || die "starting libvirtd needs root"

# /dev/kvm for libvirt's qemu (user libvirt-qemu, group kvm), as udev's rule sets it on a
# host with udev.
if [[ -c /dev/kvm ]] && getent group kvm >/dev/null; then
    chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
fi

answers() { virsh -q -c qemu:///system version >/dev/null 2>&1; }
answers && exit 0

mkdir -p /var/log/libvirt/qemu /run/libvirt /var/lib/libvirt/qemu
# A daemon just stopped stays a zombie until reaped (no init in a container): not running.
alive() { pgrep -x -r R,S,D,T,I "$1" >/dev/null; }
alive virtlogd || virtlogd -d
alive libvirtd || libvirtd -d
for _ in $(seq 1 300); do
    answers && exit 0
    sleep 0.1
done
die "libvirtd did not answer within 30 s (see /var/log/libvirt/libvirtd.log)"
