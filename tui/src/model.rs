//! What the UI shows: one analysis session over the capture, asked once when it opens for
//! the report (with its MCE and exit-reason analyses), the kernel log and each vCPU's
//! context. The panes only lay it out; every analysis is the session's.

use coroner_analyze::{
    Kallsyms, LogRecord, Report, Session, SessionOptions, Unavailable, VcpuContext, VirtAddr,
};
use coroner_formats::{Core, PhysMem};
use coroner_record::CaptureInfo;

/// Everything the panes draw.
pub struct Model<'a> {
    /// The file shown.
    pub path: String,
    /// The analysis session over the capture.
    pub session: Session<'a>,
    /// `coroner analyze`'s report, with the MCE and exit analyses.
    pub report: Report,
    /// Each vCPU of the dump, in the dump's order.
    pub vcpus: Vec<VcpuContext>,
}

impl<'a> Model<'a> {
    /// Analyzes `core` for display.
    pub fn load(core: &'a Core, path: String) -> Self {
        let session = Session::new(core, SessionOptions::default());
        let report = session.report();
        let vcpus = (0..core.elf.vcpus.len())
            .filter_map(|i| session.vcpu(i))
            .collect();
        Self {
            path,
            session,
            report,
            vcpus,
        }
    }

    /// The capture.
    pub fn core(&self) -> &'a Core {
        self.session.core()
    }

    /// The capture's record, when the file is a capture (and the record is readable).
    pub fn capture(&self) -> Option<&CaptureInfo> {
        self.session.capture()
    }

    /// Kernel symbols, when found.
    pub fn kallsyms(&self) -> Option<&Kallsyms> {
        self.session.symbols()
    }

    /// The whole kernel log (empty when unreadable; see [`Self::log_problem`]).
    pub fn log(&self) -> &[LogRecord] {
        self.session
            .kernel_log()
            .map(|l| l.records.as_slice())
            .unwrap_or_default()
    }

    /// Why the log is empty, when it is.
    pub fn log_problem(&self) -> Option<String> {
        match self.session.kernel_log() {
            Err(Unavailable::NoKernel(_)) => Some("no Linux kernel found: no kernel log".into()),
            Err(Unavailable::Failed(e)) => Some(format!("kernel log: {e}")),
            Ok(l) if l.records.is_empty() => Some("the kernel log is empty".into()),
            Ok(_) => None,
        }
    }

    /// `name+0xoff/0xsize` for a kernel address, when kallsyms knows it.
    pub fn symbolize(&self, addr: u64) -> Option<String> {
        self.session.symbolize(addr)
    }

    /// A guest-physical address for `target`: `0x...`/hex (physical), `v:0x...` (kernel
    /// virtual), or a kernel symbol name.
    pub fn resolve(&self, target: &str) -> Result<u64, String> {
        let t = target.trim();
        let hex = |s: &str| {
            u64::from_str_radix(s.trim_start_matches("0x").trim_start_matches("0X"), 16)
                .map_err(|_| format!("not a hex address: {s}"))
        };
        let virt = |va: u64| -> Result<u64, String> {
            let view = self
                .session
                .view()
                .map_err(|_| "no kernel page tables to translate a virtual address")?;
            view.tables
                .translate(VirtAddr(va))
                .map(|x| x.pa.0)
                .map_err(|e| format!("{va:#x}: {e}"))
        };
        if let Some(v) = t.strip_prefix("v:") {
            return virt(hex(v)?);
        }
        if let Ok(pa) = hex(t) {
            return Ok(pa);
        }
        let sym = self
            .kallsyms()
            .and_then(|k| k.lookup(t))
            .ok_or_else(|| format!("no such symbol or address: {t}"))?;
        virt(sym.addr)
    }

    /// Guest-physical memory.
    pub fn mem(&self) -> &'a dyn PhysMem {
        self.session.core().mem()
    }
}
