#!/usr/bin/env bash
# boot.sh: boot the kit's guest (Debian kernel + busybox initramfs) under qemu TCG.
#
# Usage: boot.sh --qmp SOCK --serial LOG [options] [-- QEMU_ARGS...]
#   --qmp PATH        QMP unix socket qemu listens on (server=on,wait=off)   [required]
#   --serial PATH     file that receives the guest's serial console          [required]
#   --mem MiB         guest RAM (default: $MEM or 512)
#   --smp N           vCPUs (default: $SMP or 2)
#   --cpu MODEL       -cpu MODEL (default: qemu's own, qemu64)
#   --append "ARGS"   extra kernel command line, e.g. "coroner.fill=450 coroner.run=panic"
#                     (added after $EXTRA_APPEND)
#   --pidfile PATH    qemu -pidfile PATH
#   --initrd PATH     another initramfs (default: $CACHE/initramfs.cpio.gz; the kdump
#                     scenario's is $CACHE/initramfs-kdump.cpio.gz, build-kdump.sh)
#   --vmcoreinfo      -device vmcoreinfo (dumps carry the guest's VMCOREINFO note)
#   --pvpanic         -device pvpanic -action panic=pause (a guest panic -> guest-panicked)
#   --iodisk          virtio-blk disk whose writes fail with EIO, werror=stop (-> io-error)
#   --watchdog        -device i6300esb -action watchdog=pause (-> watchdog)
#   -- ARGS...        passed to qemu verbatim
# Environment:
#   CORONER_KIT_DIR   cache dir holding kernel/ and initramfs.cpio.gz
#                     (default: $HOME/.cache/coroner-kit; fill it with ensure.sh)
#   MEM, SMP, EXTRA_APPEND   defaults for --mem, --smp and extra kernel arguments
#
# The script execs qemu-system-x86_64, so its pid is qemu's pid. The guest prints
# "coroner-kit: ready" on the serial console once it is set up.
set -euo pipefail

CACHE="${CORONER_KIT_DIR:-$HOME/.cache/coroner-kit}"
KIT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { printf 'boot.sh: error: %s\n' "$*" >&2; exit 1; }

qmp="" serial="" pidfile="" cpu="" append="" initrd=""
mem="${MEM:-512}"
smp="${SMP:-2}"
vmcoreinfo=0 pvpanic=0 iodisk=0 watchdog=0
extra=()

need_arg() { (($# >= 2)) || die "$1 needs a value"; }
while (($#)); do
    case "$1" in
        --qmp) need_arg "$@"; qmp="$2"; shift ;;
        --serial) need_arg "$@"; serial="$2"; shift ;;
        --mem) need_arg "$@"; mem="$2"; shift ;;
        --smp) need_arg "$@"; smp="$2"; shift ;;
        --cpu) need_arg "$@"; cpu="$2"; shift ;;
        --append) need_arg "$@"; append="$2"; shift ;;
        --pidfile) need_arg "$@"; pidfile="$2"; shift ;;
        --initrd) need_arg "$@"; initrd="$2"; shift ;;
        --vmcoreinfo) vmcoreinfo=1 ;;
        --pvpanic) pvpanic=1 ;;
        --iodisk) iodisk=1 ;;
        --watchdog) watchdog=1 ;;
        --) shift; extra=("$@"); break ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done

[[ -n "$qmp" ]] || die "--qmp PATH is required"
[[ -n "$serial" ]] || die "--serial PATH is required"
[[ "$mem" =~ ^[0-9]+$ ]] || die "--mem wants MiB as a number, got '$mem'"
[[ "$smp" =~ ^[0-9]+$ ]] || die "--smp wants a number, got '$smp'"

kernels=()
for k in "$CACHE"/kernel/boot/vmlinuz-*; do
    [[ -f "$k" ]] && kernels+=("$k")
done
((${#kernels[@]} > 0)) ||
    die "no guest kernel in $CACHE/kernel/boot: run $KIT_DIR/ensure.sh first"
((${#kernels[@]} == 1)) || die "several kernels in $CACHE/kernel/boot: ${kernels[*]}"
initrd="${initrd:-$CACHE/initramfs.cpio.gz}"
[[ -f "$initrd" ]] || die "no initramfs at $initrd: run $KIT_DIR/ensure.sh first"
command -v qemu-system-x86_64 >/dev/null ||
    die "qemu-system-x86_64 not found: run $KIT_DIR/ensure.sh (as root) first"

# Verbose console on purpose: the kernel log on the serial port is part of the evidence.
# panic=0 keeps a panicked guest from rebooting; oops=panic turns an oops into a panic;
# sysrq_always_enabled lets HMP "sendkey alt-sysrq-c" crash it.
cmdline="console=ttyS0 panic=0 oops=panic sysrq_always_enabled"
[[ -z "${EXTRA_APPEND:-}" ]] || cmdline+=" $EXTRA_APPEND"
[[ -z "$append" ]] || cmdline+=" $append"

args=(
    -accel tcg -machine pc -m "$mem" -smp "$smp"
    -nodefaults -display none -no-user-config
    -kernel "${kernels[0]}" -initrd "$initrd" -append "$cmdline"
    -serial "file:$serial"
    -qmp "unix:$qmp,server=on,wait=off"
)
[[ -z "$cpu" ]] || args+=(-cpu "$cpu")
[[ -z "$pidfile" ]] || args+=(-pidfile "$pidfile")
((!vmcoreinfo)) || args+=(-device vmcoreinfo)
((!pvpanic)) || args+=(-device pvpanic -action panic=pause)
if ((iodisk)); then
    # blkdebug must sit under a raw node, or it injects nothing.
    args+=(
        -blockdev "driver=raw,node-name=d0,file.driver=blkdebug,file.image.driver=null-co,file.image.size=67108864,file.image.read-zeroes=on,file.inject-error.0.event=write_aio,file.inject-error.0.errno=5"
        -device "virtio-blk-pci,drive=d0,werror=stop"
    )
fi
((!watchdog)) || args+=(-device i6300esb -action watchdog=pause)

exec qemu-system-x86_64 "${args[@]}" "${extra[@]}"
