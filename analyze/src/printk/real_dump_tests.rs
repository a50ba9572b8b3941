//! The reader on a real guest dump, when one is at hand (Debian 6.1 kit guest).
//!
//! Reads every dump found of `$CORONER_PRINTK_DUMP`, `/tmp/kitdump/stop-vmci.elf`,
//! `/tmp/printk-kit/stop.elf`, `/tmp/printk-kit/panic/panic.elf` (dumps with a VMCOREINFO
//! note, ELF or `.core.zst`) and compares each with the serial console log of the same
//! boot when one is there (`$CORONER_PRINTK_SERIAL`, or `serial.log`/`g.log` next to the
//! dump). Prints why and passes when no dump is there.

use std::path::{Path, PathBuf};

use coroner_formats::{Core, PhysAddr};

use crate::kmem::{KernelMem, VirtAddr, XlateError};
use crate::printk::{format_dmesg, read_kernel_log, FormatOptions, LogKind};
use crate::vmcoreinfo::Vmcoreinfo;

/// `__START_KERNEL_map`.
const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;

/// Kernel-image addresses only: `pa = va - __START_KERNEL_map + phys_base`. Enough for
/// `printk_rb_static`, which lies inside the image.
struct ImageMem {
    core: Core,
    phys_base: u64,
}

impl KernelMem for ImageMem {
    fn read_virt(&self, va: VirtAddr, buf: &mut [u8]) -> Result<(), XlateError> {
        if va.0 < START_KERNEL_MAP {
            return Err(XlateError::NotMapped { va, level: 4 });
        }
        let pa = PhysAddr((va.0 - START_KERNEL_MAP).wrapping_add(self.phys_base));
        self.core
            .mem()
            .read_at(pa, buf)
            .map_err(|_| XlateError::NotPresent { va, pa })
    }
}

fn find_dumps() -> Vec<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("CORONER_PRINTK_DUMP") {
        candidates.push(p.into());
    }
    candidates.push("/tmp/kitdump/stop-vmci.elf".into());
    candidates.push("/tmp/printk-kit/stop.elf".into());
    candidates.push("/tmp/printk-kit/panic/panic.elf".into());
    candidates.retain(|p| p.exists());
    candidates
}

fn find_serial(dump: &Path) -> Option<String> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("CORONER_PRINTK_SERIAL") {
        candidates.push(p.into());
    }
    let dir = dump.parent()?;
    candidates.push(dir.join("serial.log"));
    candidates.push(dir.join("g.log"));
    let p = candidates.into_iter().find(|p| p.exists())?;
    std::fs::read(p)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// True for a console line printed from the kernel log: `[%5lu.%06lu] `.
fn is_log_line(l: &str) -> bool {
    let Some((stamp, _)) = l.strip_prefix('[').and_then(|r| r.split_once("] ")) else {
        return false;
    };
    let Some((sec, usec)) = stamp.trim_start().split_once('.') else {
        return false;
    };
    !sec.is_empty()
        && usec.len() == 6
        && sec.bytes().chain(usec.bytes()).all(|b| b.is_ascii_digit())
}

#[test]
fn real_dump_kernel_log() {
    let dumps = find_dumps();
    if dumps.is_empty() {
        eprintln!(
            "skipped: no real dump (set CORONER_PRINTK_DUMP, or make /tmp/kitdump/stop-vmci.elf)"
        );
    }
    for path in dumps {
        check_dump(&path);
    }
}

fn check_dump(path: &Path) {
    let core = coroner_formats::open(path).unwrap();
    let Some(text) = core.elf.vmcoreinfo.clone() else {
        eprintln!("skipped: {} has no VMCOREINFO note", path.display());
        return;
    };
    let vmci = Vmcoreinfo::parse(&text);
    let phys_base = vmci.number("phys_base").unwrap() as u64;
    let mem = ImageMem { core, phys_base };
    let log = read_kernel_log(&mem, &vmci).unwrap();
    let first = log.records.first().map(|r| r.text.as_str()).unwrap_or("");
    let last = log.records.last().map(|r| r.text.as_str()).unwrap_or("");
    eprintln!("dump: {}", path.display());
    eprintln!("located: {}", log.located);
    eprintln!("records: {}", log.records.len());
    eprintln!("first: {first}");
    eprintln!("last: {last}");
    eprintln!("diagnostics: {:?}", log.diagnostics);
    assert_eq!(log.kind, LogKind::Lockless);
    assert!(first.starts_with("Linux version "), "{first}");
    assert!(log.records.windows(2).all(|w| w[0].seq < w[1].seq));
    // Timestamps are not monotonic in a real log ("tsc: Marking TSC unstable" switches
    // clocks; a CPU coming up stamps 0): seq is the order.

    let Some(serial) = find_serial(path) else {
        eprintln!("no serial log next to the dump: not compared");
        return;
    };
    // The console prints records below console_loglevel (7: everything but debug).
    let ours = format_dmesg(
        &log.records,
        &FormatOptions {
            max_level: Some(6),
            ..FormatOptions::default()
        },
    );
    let theirs: Vec<&str> = serial
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| is_log_line(l))
        .collect();
    let ours: Vec<&str> = ours.lines().collect();
    eprintln!("serial log lines: {}, ours: {}", theirs.len(), ours.len());
    for (i, (a, b)) in theirs.iter().zip(&ours).enumerate() {
        assert_eq!(a, b, "line {i} differs");
    }
    assert_eq!(theirs.len(), ours.len());
}
