//! Backtraces without debuginfo: the kernel's ORC unwind tables, read from guest memory
//! (vmlinux's from kallsyms' `__start_orc_unwind*`, each module's from its `struct
//! module`), and the unwinder that walks a task's or a vCPU's kernel stack with them;
//! for a kernel built without ORC, the frame-pointer chain instead.

mod entry;
mod frame_pointer;
mod locate;
mod table;
mod unwind;

pub use entry::{Kind, OrcEntry, OrcFormat, Reg};
pub use frame_pointer::unwind_frame_pointers;
pub use locate::{locate_vmlinux_orc, ImageBounds, LocatedOrc};
pub use table::OrcTable;
pub use unwind::{unwind, Frame, PtRegs, Start, Stop, Unwind, MAX_FRAMES};

use crate::btf::Btf;
use crate::kallsyms::Kallsyms;
use crate::kmem::{KernelMem, VirtAddr};
use crate::modules::ModuleList;

/// Why the ORC tables could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OrcError {
    /// A symbol the tables are found by is missing.
    #[error("kallsyms has no {0} (a kernel built without CONFIG_UNWINDER_ORC, or without CONFIG_KALLSYMS_ALL)")]
    NoSymbol(&'static str),
    /// The tables' symbols are missing and the search for the tables failed.
    #[error("no ORC tables: kallsyms lacks __start_orc_unwind_ip (no CONFIG_KALLSYMS_ALL, or no CONFIG_UNWINDER_ORC), and {0}")]
    NotFound(String),
    /// The table bounds do not describe one table.
    #[error("the ORC tables disagree: {0}")]
    Inconsistent(String),
    /// A `.orc_header` hash of no known format.
    #[error("unrecognized .orc_header {0}")]
    UnknownHeader(String),
    /// The tables could not be read.
    #[error("{0}")]
    Read(String),
}

impl OrcError {
    /// The kernel has no ORC tables that could be found (as opposed to tables that could
    /// not be read): a frame-pointer kernel, or one whose tables neither symbol nor search
    /// finds.
    pub fn is_absent(&self) -> bool {
        matches!(self, OrcError::NoSymbol(_) | OrcError::NotFound(_))
    }
}

/// The ORC tables of a kernel: vmlinux's and each module's.
#[derive(Clone, Debug)]
pub struct KernelOrc {
    /// The entry format, by `.orc_header` or the release.
    pub format: OrcFormat,
    vmlinux: OrcTable,
    /// The first address vmlinux's table covers (`None`: an empty table).
    vmlinux_first: Option<u64>,
    /// Where vmlinux's text ends (`_etext`): above it only modules have entries.
    text_end: u64,
    /// vmlinux's init text (`_sinittext`.. `_einittext`): freed after boot, but its
    /// entries stay in the table, and the boot CPU's idle task returns into it.
    init_text: Option<(u64, u64)>,
    /// (text start, text end, table) per module that has one.
    modules: Vec<(u64, u64, OrcTable)>,
    /// How the tables were found, for reports.
    pub how: Vec<String>,
    /// Modules whose table could not be read.
    pub diagnostics: Vec<String>,
}

impl KernelOrc {
    /// Reads vmlinux's table through kallsyms and, when `modules` is given, each module's
    /// (`struct module`'s `arch.orc_unwind_ip`, `arch.orc_unwind`, `arch.num_orcs` from
    /// BTF). `release` picks the format when the kernel has no `.orc_header`.
    pub fn read(
        mem: &dyn KernelMem,
        ks: &Kallsyms,
        release: Option<&str>,
        btf: Option<&Btf>,
        modules: Option<&ModuleList>,
    ) -> Result<KernelOrc, OrcError> {
        let sym = |name: &'static str| {
            ks.lookup(name)
                .map(|s| s.addr)
                .ok_or(OrcError::NoSymbol(name))
        };
        let (ip_start, orc_start, n, located_header, located_how) = match ks
            .lookup("__start_orc_unwind_ip")
        {
            Some(_) => {
                let (ip_start, ip_stop) =
                    (sym("__start_orc_unwind_ip")?, sym("__stop_orc_unwind_ip")?);
                let (orc_start, orc_stop) = (sym("__start_orc_unwind")?, sym("__stop_orc_unwind")?);
                let n = ip_stop.wrapping_sub(ip_start) / 4;
                if ip_stop < ip_start || orc_stop < orc_start || orc_stop - orc_start != 6 * n {
                    return Err(OrcError::Inconsistent(format!(
                        "{:#x}..{:#x} holds {n} addresses but {:#x}..{:#x} is not {n} entries",
                        ip_start, ip_stop, orc_start, orc_stop
                    )));
                }
                (
                    ip_start,
                    orc_start,
                    n,
                    None,
                    "__start_orc_unwind_ip, kallsyms".to_string(),
                )
            }
            None => {
                let bounds = ImageBounds {
                    stext: sym("_stext")?,
                    etext: sym("_etext")?,
                    sinittext: sym("_sinittext")?,
                };
                let found = locate_vmlinux_orc(mem, bounds)?;
                (
                        found.ip_table,
                        found.entries,
                        found.n,
                        found.header_format,
                        format!(
                            "no ORC symbols in kallsyms: found between _etext and _sinittext as the run of climbing text addresses, its length confirmed by {} orc_lookup slots",
                            found.lookup_checked
                        ),
                    )
            }
        };
        let by_release = OrcFormat::from_release(release.unwrap_or(""));
        // The kernel's own orc_fp_entry, when kallsyms has it (crash's probe).
        let by_fp_entry = ks.lookup("orc_fp_entry").and_then(|s| {
            let b = mem.read_vec(VirtAddr(s.addr), 6, 6).ok()?;
            let raw: [u8; 6] = b.as_slice().try_into().ok()?;
            OrcFormat::from_fp_entry(raw, by_release)
        });
        let header = ks.lookup("__start_orc_header");
        let (format, format_how) = match (located_header, header) {
            (Some(f), _) => (
                f,
                format!("format {f:?} by the .orc_header hash right before the ip table"),
            ),
            (None, Some(h)) => {
                let bytes = mem
                    .read_vec(VirtAddr(h.addr), 20, 20)
                    .map_err(|e| OrcError::Read(format!(".orc_header at {:#x}: {e}", h.addr)))?;
                let found = entry::HEADER_HASHES
                    .iter()
                    .find(|(hash, _)| hash[..] == bytes[..])
                    .map(|&(_, f)| f);
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                match (found, by_fp_entry) {
                    (Some(f), _) => (f, format!("format {f:?} by its .orc_header hash")),
                    // A distribution kernel may carry a header of its own: the entry the
                    // kernel itself uses for frame pointers tells the layout.
                    (None, Some(f)) => (
                        f,
                        format!("format {f:?} by orc_fp_entry (unrecognized .orc_header {hex})"),
                    ),
                    (None, None) => return Err(OrcError::UnknownHeader(hex)),
                }
            }
            (None, None) => match by_fp_entry {
                Some(f) => (
                    f,
                    format!(
                        "format {f:?} by orc_fp_entry and the release {} (no .orc_header)",
                        release.unwrap_or("(unknown)")
                    ),
                ),
                None => (
                    by_release,
                    format!(
                        "format {by_release:?} by the release {} (no .orc_header)",
                        release.unwrap_or("(unknown)")
                    ),
                ),
            },
        };
        let vmlinux = OrcTable::new(mem, VirtAddr(ip_start), VirtAddr(orc_start), n, format)
            .map_err(OrcError::Read)?;
        let mut orc = KernelOrc {
            format,
            how: vec![format!(
                "vmlinux ORC: {n} entries at {ip_start:#x} ({located_how}); {format_how}"
            )],
            vmlinux_first: vmlinux.first(mem),
            vmlinux,
            text_end: ks.lookup("_etext").map_or(u64::MAX, |s| s.addr),
            init_text: ks
                .lookup("_sinittext")
                .zip(ks.lookup("_einittext"))
                .map(|(a, b)| (a.addr, b.addr)),
            modules: Vec::new(),
            diagnostics: Vec::new(),
        };
        if let (Some(btf), Some(list)) = (btf, modules) {
            orc.read_modules(mem, btf, list);
        }
        Ok(orc)
    }

    fn read_modules(&mut self, mem: &dyn KernelMem, btf: &Btf, list: &ModuleList) {
        let offsets = (
            btf.offset_of("module", "arch.num_orcs"),
            btf.offset_of("module", "arch.orc_unwind_ip"),
            btf.offset_of("module", "arch.orc_unwind"),
        );
        let (Ok(num), Ok(ips), Ok(entries)) = offsets else {
            self.diagnostics.push(
                "struct module has no arch.num_orcs in BTF: module code is not unwound".into(),
            );
            return;
        };
        for m in &list.modules {
            let at = |off: u64| VirtAddr(m.struct_module.wrapping_add(off));
            let read = || -> Result<OrcTable, String> {
                let n = u64::from(mem.read_u32(at(num)).map_err(|e| e.to_string())?);
                let ip = mem.read_u64(at(ips)).map_err(|e| e.to_string())?;
                let en = mem.read_u64(at(entries)).map_err(|e| e.to_string())?;
                OrcTable::new(mem, VirtAddr(ip), VirtAddr(en), n, self.format)
            };
            match read() {
                Ok(t) if !t.is_empty() => {
                    self.modules
                        .push((m.address, m.address.saturating_add(m.text_size), t))
                }
                Ok(_) => {}
                Err(e) => self
                    .diagnostics
                    .push(format!("module {}'s ORC table: {e}", m.name)),
            }
        }
        self.how.push(format!(
            "module ORC from struct module's arch.orc_unwind_ip/orc_unwind/num_orcs (BTF) for {} modules",
            self.modules.len()
        ));
    }

    /// The entry for code at `ip`: a module's table when a module's text holds it, else
    /// vmlinux's (within its text). `Ok(None)` when no table covers it.
    pub fn find(&self, mem: &dyn KernelMem, ip: u64) -> Result<Option<OrcEntry>, String> {
        if let Some((_, _, t)) = self
            .modules
            .iter()
            .find(|(lo, hi, _)| (*lo..*hi).contains(&ip))
        {
            return t.find(mem, ip);
        }
        let in_init = self.init_text.is_some_and(|(a, b)| (a..b).contains(&ip));
        match self.vmlinux_first {
            Some(first) if ip >= first && (ip < self.text_end || in_init) => {
                self.vmlinux.find(mem, ip)
            }
            _ => Ok(None),
        }
    }
}

/// Where a sleeping task's unwind starts: `task->thread.sp` points at the `struct
/// inactive_task_frame` `__switch_to_asm` pushed; its `ret_addr` is in `__schedule` (or
/// `ret_from_fork` for a task that never ran).
pub fn task_start(
    mem: &dyn KernelMem,
    btf: &Btf,
    task: u64,
    ret_from_fork: Option<u64>,
) -> Result<Start, String> {
    let thread_sp = btf
        .offset_of("task_struct", "thread.sp")
        .map_err(|e| e.to_string())?;
    let size = btf
        .struct_size("inactive_task_frame")
        .map_err(|e| e.to_string())?;
    let ret = btf
        .offset_of("inactive_task_frame", "ret_addr")
        .map_err(|e| e.to_string())?;
    let bp = btf
        .offset_of("inactive_task_frame", "bp")
        .map_err(|e| e.to_string())?;
    let sp = mem
        .read_u64(VirtAddr(task.wrapping_add(thread_sp)))
        .map_err(|e| format!("thread.sp of task {task:#x}: {e}"))?;
    let read = |off: u64| {
        mem.read_u64(VirtAddr(sp.wrapping_add(off)))
            .map_err(|e| format!("the switch frame at {sp:#x}: {e}"))
    };
    let ip = read(ret)?;
    Ok(Start {
        ip,
        sp: sp.wrapping_add(size),
        bp: read(bp)?,
        regs: None,
        signal: Some(ip) == ret_from_fork,
    })
}

#[cfg(test)]
mod tests;
