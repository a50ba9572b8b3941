//! The kernel's loaded modules, from the `modules` list in guest memory with the layout of
//! `struct module` from BTF: name, state, memory, reference count, taints and each
//! module's own symbols, so module code is named as the kernel names it
//! (`pvpanic_panic_notify+0x10/0x40 [pvpanic]`).

mod layout;
mod symbols;
pub mod table;

use std::collections::HashSet;

use serde::Serialize;

use crate::btf::Btf;
use crate::kallsyms::Kallsyms;
use crate::kmem::{KernelMem, VirtAddr};
pub use layout::{ModuleLayout, Regions};
pub use symbols::ModuleSymbol;

/// Modules walked at most (a list that never returns to its head is cut here).
const MAX_MODULES: usize = 8192;

/// The `TAINT_*` bits a module can carry and their letters, as `/proc/modules` prints them.
const MODULE_TAINTS: [(u32, char); 9] = [
    (0, 'P'),
    (1, 'F'),
    (10, 'C'),
    (12, 'O'),
    (13, 'E'),
    (15, 'K'),
    (16, 'X'),
    (17, 'T'),
    (18, 'N'),
];

/// One loaded module.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Module {
    /// Its name.
    pub name: String,
    /// `Live`, `Loading`, `Unloading` or `Unformed`, as `/proc/modules` says.
    pub state: String,
    /// Where its code starts (`/proc/modules`' address).
    #[serde(with = "coroner_formats::hex")]
    pub address: u64,
    /// Bytes of memory, as `/proc/modules` counts them (core and init).
    pub size: u64,
    /// Bytes of its code.
    pub text_size: u64,
    /// Users, as `/proc/modules` counts them (the counter less its base of 1; `None`
    /// without `CONFIG_MODULE_UNLOAD`).
    pub refcnt: Option<i64>,
    /// Taint letters (`OE`), empty when untainted.
    pub taints: String,
    /// Where its `struct module` is.
    #[serde(with = "coroner_formats::hex")]
    pub struct_module: u64,
    /// Number of its symbols read.
    pub symbol_count: usize,
    /// Its symbols (not serialized).
    #[serde(skip)]
    pub symbols: Vec<ModuleSymbol>,
}

/// The modules of a kernel and how they were read.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ModuleList {
    /// The modules, in list order (most recently loaded first).
    pub modules: Vec<Module>,
    /// How the list and the layout were found.
    pub how: Vec<String>,
    /// What was cut short or unreadable.
    pub diagnostics: Vec<String>,
    /// Every module symbol, sorted by address: (address, end, module index, symbol index).
    #[serde(skip)]
    index: Vec<(u64, u64, usize, usize)>,
}

/// Why the modules could not be listed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModulesError {
    /// kallsyms has no `modules` (a kernel without `CONFIG_KALLSYMS_ALL`, or no module
    /// support).
    #[error("kallsyms has no `modules` list head (a kernel without CONFIG_KALLSYMS_ALL or without modules)")]
    NoListHead,
    /// No kallsyms table to find the list in.
    #[error("no kallsyms: {0}")]
    NoKallsyms(String),
    /// No BTF to lay out `struct module` with.
    #[error("{0}")]
    NoBtf(String),
    /// BTF does not describe `struct module` as needed.
    #[error("the layout of struct module: {0}")]
    Layout(String),
    /// The list head could not be read.
    #[error("reading the module list head at {va:#x}: {why}")]
    Unreadable {
        /// Where.
        va: u64,
        /// Why.
        why: String,
    },
}

/// `/proc/modules`' word for a `module_state` value.
fn state_word(layout: &ModuleLayout, v: u32) -> String {
    let name = layout
        .state_names
        .iter()
        .find(|(_, x)| *x == i64::from(v))
        .map(|(n, _)| n.as_str());
    match name {
        Some("MODULE_STATE_LIVE") => "Live".into(),
        Some("MODULE_STATE_COMING") => "Loading".into(),
        Some("MODULE_STATE_GOING") => "Unloading".into(),
        Some("MODULE_STATE_UNFORMED") => "Unformed".into(),
        Some(other) => other.to_string(),
        None => format!("state {v}"),
    }
}

/// The `modules` list head, from kallsyms.
pub fn modules_head(kallsyms: &Kallsyms) -> Result<u64, ModulesError> {
    kallsyms
        .lookup("modules")
        .map(|s| s.addr)
        .ok_or(ModulesError::NoListHead)
}

/// Reads every module of the list whose head is at `head`.
pub fn read_modules(mem: &dyn KernelMem, btf: &Btf, head: u64) -> Result<ModuleList, ModulesError> {
    let layout = ModuleLayout::from_btf(btf).map_err(|e| ModulesError::Layout(e.to_string()))?;
    let mut list = ModuleList {
        how: vec![
            format!("the `modules` list head at {head:#x} (kallsyms)"),
            layout.describe(),
        ],
        ..ModuleList::default()
    };
    let mut next = mem
        .read_u64(VirtAddr(head))
        .map_err(|e| ModulesError::Unreadable {
            va: head,
            why: e.to_string(),
        })?;
    let mut seen = HashSet::new();
    while next != head {
        if list.modules.len() >= MAX_MODULES || !seen.insert(next) {
            list.diagnostics.push(format!(
                "the module list does not return to its head (a loop or more than {MAX_MODULES} entries at {next:#x}): cut there"
            ));
            break;
        }
        let m = next.wrapping_sub(layout.list);
        match read_module(mem, &layout, m) {
            Ok((module, note)) => {
                if let Some(n) = note {
                    list.diagnostics.push(format!("{}: {n}", module.name));
                }
                list.modules.push(module);
            }
            Err(why) => {
                list.diagnostics.push(format!(
                    "struct module at {m:#x}: {why}; the list is cut there"
                ));
                break;
            }
        }
        next = match mem.read_u64(VirtAddr(next)) {
            Ok(n) => n,
            Err(e) => {
                list.diagnostics.push(format!(
                    "the list link at {next:#x}: {e}; the list is cut there"
                ));
                break;
            }
        };
    }
    list.build_index();
    Ok(list)
}

fn read_module(
    mem: &dyn KernelMem,
    l: &ModuleLayout,
    m: u64,
) -> Result<(Module, Option<String>), String> {
    let at = |off: u64| VirtAddr(m.wrapping_add(off));
    let u64_at = |off: u64| mem.read_u64(at(off)).map_err(|e| e.to_string());
    let u32_at = |off: u64| mem.read_u32(at(off)).map_err(|e| e.to_string());
    let name_bytes = mem
        .read_vec(at(l.name), l.name_len, 256)
        .map_err(|e| format!("name: {e}"))?;
    let end = name_bytes
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(name_bytes.len());
    let name = String::from_utf8_lossy(&name_bytes[..end]).into_owned();
    let state = state_word(l, u32_at(l.state)?);
    let (address, size, text_size) = match &l.regions {
        Regions::Mem {
            mem: mem_off,
            stride,
            base,
            size,
            core,
            init,
            text,
        } => {
            let region = |i: u64| -> Result<(u64, u64), String> {
                let r = mem_off + i * stride;
                Ok((u64_at(r + base)?, u64::from(u32_at(r + size)?)))
            };
            let (text_base, text_size) = region(*text)?;
            let mut total = 0u64;
            for &i in core.iter().chain(init) {
                total += region(i)?.1;
            }
            (text_base, total, text_size)
        }
        Regions::Layout {
            core_base,
            core_size,
            core_text_size,
            init_size,
            ..
        } => (
            u64_at(*core_base)?,
            u64::from(u32_at(*core_size)?) + u64::from(u32_at(*init_size)?),
            u64::from(u32_at(*core_text_size)?),
        ),
    };
    // The counter holds MODULE_REF_BASE (1) more than the users `/proc/modules` counts.
    let refcnt = match l.refcnt {
        Some(o) => Some(i64::from(u32_at(o)? as i32) - 1),
        None => None,
    };
    let taints = match l.taints {
        Some(o) => {
            let bits = u64_at(o)?;
            MODULE_TAINTS
                .iter()
                .filter(|(b, _)| bits & (1 << b) != 0)
                .map(|&(_, c)| c)
                .collect()
        }
        None => String::new(),
    };
    let symtab = u64_at(l.symtab)?;
    let num = u64::from(u32_at(l.num_symtab)?);
    let strtab = u64_at(l.strtab)?;
    let typetab = match l.typetab {
        Some(o) => Some(u64_at(o)?),
        None => None,
    };
    let (symbols, note) = if num == 0 {
        (Vec::new(), None)
    } else {
        match symbols::read_symbols(mem, symtab, num, strtab, typetab) {
            Ok(x) => x,
            Err(e) => (Vec::new(), Some(format!("no symbols: {e}"))),
        }
    };
    Ok((
        Module {
            name,
            state,
            address,
            size,
            text_size,
            refcnt,
            taints,
            struct_module: m,
            symbol_count: symbols.len(),
            symbols,
        },
        note,
    ))
}

impl ModuleList {
    fn build_index(&mut self) {
        let mut idx = Vec::new();
        for (mi, m) in self.modules.iter().enumerate() {
            // The kernel (`find_kallsyms_symbol`) sizes a symbol of the module's text by
            // the next symbol's address, or the end of the text: `st_size` would print
            // `f+0xc/0x17` where the guest printed `f+0xc/0x20`.
            let text_end = m.address.saturating_add(m.text_size);
            let in_text = |a: u64| a >= m.address && a < text_end;
            let mut starts: Vec<u64> = m
                .symbols
                .iter()
                .map(|s| s.addr)
                .filter(|&a| in_text(a))
                .collect();
            starts.sort_unstable();
            starts.dedup();
            for (si, s) in m.symbols.iter().enumerate() {
                let end = if in_text(s.addr) {
                    let next = starts.partition_point(|&a| a <= s.addr);
                    starts.get(next).copied().unwrap_or(text_end)
                } else {
                    s.addr.saturating_add(s.size.max(1))
                };
                idx.push((s.addr, end, mi, si));
            }
        }
        idx.sort_unstable();
        self.index = idx;
    }

    /// The module symbol containing `addr`, with the offset into it and the module.
    pub fn symbolize(&self, addr: u64) -> Option<(&ModuleSymbol, u64, &Module)> {
        self.locate(addr).map(|(s, off, _, m)| (s, off, m))
    }

    /// The symbol containing `addr`, the offset, the size the kernel prints, the module.
    fn locate(&self, addr: u64) -> Option<(&ModuleSymbol, u64, u64, &Module)> {
        let pos = self.index.partition_point(|e| e.0 <= addr);
        // The nearest symbol at or below `addr` whose extent covers it; of aliases at one
        // address the first in the symbol table, as the kernel picks.
        let hit = self.index[..pos]
            .iter()
            .rev()
            .take(8)
            .find(|e| addr < e.1)?;
        let first = self.index[..pos]
            .iter()
            .rev()
            .take_while(|e| e.0 == hit.0 && e.2 == hit.2)
            .min_by_key(|e| e.3)
            .unwrap_or(hit);
        let &(start, end, mi, si) = first;
        let m = self.modules.get(mi)?;
        Some((m.symbols.get(si)?, addr - start, end - start, m))
    }

    /// `name+0xoff/0xsize [module]` for a module address, as the kernel prints it.
    pub fn format_addr(&self, addr: u64) -> Option<String> {
        self.locate(addr)
            .map(|(s, off, size, m)| format!("{}+{:#x}/{:#x} [{}]", s.name, off, size, m.name))
    }

    /// A return address as the kernel's `%pB` prints it (see `Kallsyms::format_return`).
    pub fn format_return(&self, addr: u64) -> Option<String> {
        self.locate(addr.checked_sub(1)?)
            .map(|(s, off, size, m)| format!("{}+{:#x}/{:#x} [{}]", s.name, off + 1, size, m.name))
    }

    /// The module whose memory holds `addr` (by its symbols' extent or its code range).
    pub fn module_of(&self, addr: u64) -> Option<&Module> {
        self.symbolize(addr).map(|(_, _, m)| m).or_else(|| {
            self.modules
                .iter()
                .find(|m| addr >= m.address && addr - m.address < m.text_size)
        })
    }

    /// A symbol by name, in any module (`name`, or `module:name`).
    pub fn lookup(&self, name: &str) -> Option<(&ModuleSymbol, &Module)> {
        let (module, sym) = match name.split_once(':') {
            Some((m, s)) => (Some(m), s),
            None => (None, name),
        };
        self.modules
            .iter()
            .filter(|m| module.is_none_or(|x| x == m.name))
            .find_map(|m| m.symbols.iter().find(|s| s.name == sym).map(|s| (s, m)))
    }
}

#[cfg(test)]
mod tests;
