//! Checks against a real guest dump (Debian 6.1.0-56-amd64 under qemu), when one is
//! present: `CORONER_KALLSYMS_DUMP` or `/tmp/ks.elf` / `/tmp/ks.core.zst`, made by
//! `make-sample stop --vmcoreinfo`. The guest kernel's real System.map (from the
//! `linux-image-6.1.0-56-amd64-dbg` package; Debian's `/boot` one is a placeholder) is read
//! from `CORONER_SYSTEM_MAP` or `/tmp/kdbg/System.map`. Each part is skipped, with the
//! reason printed, when its file is absent.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use coroner_formats::{Core, PhysAddr};

use super::Kallsyms;
use crate::kmem::{KernelMem, VirtAddr, XlateError};
use crate::vmcoreinfo::Vmcoreinfo;

/// `__START_KERNEL_map`.
const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;

/// Kernel-image addresses only: `pa = va - __START_KERNEL_map + phys_base`. Enough for
/// the kallsyms tables, which are in the image's `.rodata`.
struct ImageMem {
    core: Core,
    phys_base: u64,
}

impl KernelMem for ImageMem {
    fn read_virt(&self, va: VirtAddr, buf: &mut [u8]) -> Result<(), XlateError> {
        let end = va.0.checked_add(buf.len() as u64);
        if va.0 < START_KERNEL_MAP || end.is_none_or(|e| e > START_KERNEL_MAP + (1 << 30)) {
            return Err(XlateError::NotMapped { va, level: 4 });
        }
        // phys_base = pa(_text) - (va(_text) - __START_KERNEL_map) is negative (two's
        // complement) when KASLR moved the image further up virtually than physically.
        let pa = PhysAddr((va.0 - START_KERNEL_MAP).wrapping_add(self.phys_base));
        self.core
            .mem()
            .read_at(pa, buf)
            .map_err(|_| XlateError::NotPresent { va, pa })
    }
}

fn dump_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CORONER_KALLSYMS_DUMP") {
        return Some(PathBuf::from(p));
    }
    ["/tmp/ks.elf", "/tmp/ks.core.zst"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// (address, type, name) lines of a real System.map.
fn system_map() -> Result<Vec<(u64, char, String)>, String> {
    let path = std::env::var_os("CORONER_SYSTEM_MAP")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/kdbg/System.map"));
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let v: Vec<_> = text
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let a = u64::from_str_radix(it.next()?, 16).ok()?;
            let k = it.next()?.chars().next()?;
            Some((a, k, it.next()?.to_string()))
        })
        .collect();
    if v.len() < 1000 {
        return Err(format!(
            "{} is a placeholder ({} lines)",
            path.display(),
            v.len()
        ));
    }
    Ok(v)
}

#[test]
fn real_debian_6_1_dump() {
    let Some(path) = dump_path() else {
        eprintln!("skipped: no dump at /tmp/ks.elf or /tmp/ks.core.zst (make one with make-sample stop --vmcoreinfo)");
        return;
    };
    let core = coroner_formats::open(Path::new(&path)).unwrap();
    let Some(text) = core.elf.vmcoreinfo.clone() else {
        eprintln!("skipped: {} has no VMCOREINFO", path.display());
        return;
    };
    let vmci = Vmcoreinfo::parse(&text);
    let phys_base = vmci.number("phys_base").unwrap() as u64;
    let koff = vmci.kernel_offset().unwrap();
    let stext = vmci.symbol("_stext").unwrap();
    let mem = ImageMem { core, phys_base };
    eprintln!(
        "dump {}: {} KERNELOFFSET={koff:#x} phys_base={phys_base:#x}",
        path.display(),
        vmci.osrelease().unwrap_or("?")
    );

    let t = Instant::now();
    let k = Kallsyms::from_vmcoreinfo(&mem, &vmci).unwrap();
    let t_vmci = t.elapsed();
    eprintln!(
        "from_vmcoreinfo: {} symbols in {t_vmci:?}; {}",
        k.len(),
        k.how()
    );

    // Independent truth 1: the symbols VMCOREINFO names.
    for key in [
        "_stext",
        "prb",
        "printk_rb_static",
        "clear_seq",
        "init_uts_ns",
        "init_top_pgt",
        "node_data",
        "vmap_area_list",
    ] {
        if let Some(want) = vmci.symbol(key) {
            let got = k.lookup(key).map(|s| s.addr);
            eprintln!("  VMCOREINFO SYMBOL({key})={want:#x}  kallsyms {got:x?}");
            assert_eq!(got, Some(want), "{key}");
        }
    }
    // Macros, not symbols: they symbolize into the variable they alias.
    for (key, prefix) in [
        ("swapper_pg_dir", "init_top_pgt+0x0/"),
        ("node_online_map", "node_states+0x"),
    ] {
        if let Some(a) = vmci.symbol(key) {
            let s = k.format_addr(a);
            eprintln!("  VMCOREINFO SYMBOL({key})={a:#x}  symbolizes as {s}");
            assert!(s.starts_with(prefix), "{key}: {s}");
        }
    }
    assert!(k.format_addr(stext).starts_with("startup_64+0x0/"));

    // Independent truth 2: the kernel's System.map, shifted by KERNELOFFSET.
    match system_map() {
        Err(why) => eprintln!("System.map comparison skipped: {why}"),
        Ok(map) if vmci.osrelease() != Some("6.1.0-56-amd64") => {
            eprintln!(
                "System.map comparison skipped: the dump is not 6.1.0-56-amd64 ({} lines)",
                map.len()
            )
        }
        Ok(map) => {
            for name in [
                "_stext",
                "_text",
                "panic",
                "sysrq_handle_crash",
                "prb",
                "do_syscall_64",
                "_etext",
            ] {
                let want = map
                    .iter()
                    .find(|(_, _, n)| n == name)
                    .map(|(a, _, _)| a + koff);
                let got = k.lookup(name).map(|s| s.addr);
                eprintln!(
                    "  System.map {name}: {want:x?} kallsyms {got:x?} {}",
                    got.map(|a| k.format_addr(a + 1)).unwrap_or_default()
                );
                assert_eq!(got, want, "{name}");
            }
            let set: HashSet<(u64, &str)> = map.iter().map(|(a, _, n)| (*a, n.as_str())).collect();
            let mut missing = Vec::new();
            for s in k.symbols() {
                let a = if s.is_absolute() {
                    s.addr
                } else {
                    s.addr.wrapping_sub(koff)
                };
                if !set.contains(&(a, s.name.as_str())) {
                    missing.push(s);
                }
            }
            eprintln!(
                "  {} of {} kallsyms symbols match System.map (name and address); {} do not: {:?}",
                k.len() - missing.len(),
                k.len(),
                missing.len(),
                missing.iter().take(5).collect::<Vec<_>>()
            );
            assert!(missing.is_empty());
        }
    }

    // The scan, without the VMCOREINFO kallsyms keys, finds the same table.
    let text_start = START_KERNEL_MAP + 0x100_0000 + koff;
    for hint in [None, Some(stext)] {
        let t = Instant::now();
        let s = Kallsyms::scan(&mem, VirtAddr(text_start), 64 << 20, hint).unwrap();
        eprintln!(
            "scan (hint {hint:x?}): {} symbols in {:?}; {}",
            s.len(),
            t.elapsed(),
            s.how()
        );
        assert_eq!(s.symbols(), k.symbols());
        assert_eq!(s.info().names, k.info().names);
        assert_eq!(s.info().encoding, k.info().encoding);
    }
}
