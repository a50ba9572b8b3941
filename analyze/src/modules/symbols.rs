//! A module's own symbol table (`core_kallsyms`: `Elf64_Sym` entries and their string
//! table, in module memory), and the index that names module addresses.

use crate::kallsyms::read_prefix;
use crate::kmem::{KernelMem, VirtAddr};

/// `sizeof(Elf64_Sym)`.
const SYM_SIZE: u64 = 24;

/// Symbols read per module at most.
pub const MAX_MODULE_SYMBOLS: u64 = 1 << 18;

/// Bytes of a module's string table read at most.
const MAX_STRTAB: u64 = 8 << 20;

/// The longest name read.
const MAX_NAME: usize = 512;

/// A symbol of a module.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ModuleSymbol {
    /// Its address.
    #[serde(with = "coroner_formats::hex")]
    pub addr: u64,
    /// Its size (`st_size`).
    pub size: u64,
    /// The nm type letter (`t`, `T`, `d`, ...).
    pub kind: char,
    /// Its name.
    pub name: String,
}

/// The nm letter of an ELF symbol when the kernel kept no type table (< 5.2).
fn letter_of(info: u8) -> char {
    let global = info >> 4 == 1;
    let c = match info & 0xf {
        2 => 't',
        1 => 'd',
        _ => '?',
    };
    if global {
        c.to_ascii_uppercase()
    } else {
        c
    }
}

/// Reads `num` symbols at `symtab` with names in `strtab` (and letters in `typetab`).
/// Returns the symbols (defined ones with a name) and a diagnostic when the table was cut.
pub fn read_symbols(
    mem: &dyn KernelMem,
    symtab: u64,
    num: u64,
    strtab: u64,
    typetab: Option<u64>,
) -> Result<(Vec<ModuleSymbol>, Option<String>), String> {
    let mut note = None;
    let n = if num > MAX_MODULE_SYMBOLS {
        note = Some(format!(
            "{num} symbols claimed; the first {MAX_MODULE_SYMBOLS} read"
        ));
        MAX_MODULE_SYMBOLS
    } else {
        num
    };
    let raw = mem
        .read_vec(
            VirtAddr(symtab),
            n * SYM_SIZE,
            MAX_MODULE_SYMBOLS * SYM_SIZE,
        )
        .map_err(|e| format!("symbol table: {e}"))?;
    let types = match typetab {
        Some(t) if t != 0 => mem.read_vec(VirtAddr(t), n, MAX_MODULE_SYMBOLS).ok(),
        _ => None,
    };
    let entries: Vec<(u32, u8, u16, u64, u64)> = raw
        .chunks_exact(SYM_SIZE as usize)
        .map(|e| {
            let u32_at = |o: usize| u32::from_le_bytes([e[o], e[o + 1], e[o + 2], e[o + 3]]);
            let u64_at = |o: usize| u64::from(u32_at(o)) | (u64::from(u32_at(o + 4)) << 32);
            (
                u32_at(0),
                e[4],
                u16::from_le_bytes([e[6], e[7]]),
                u64_at(8),
                u64_at(16),
            )
        })
        .collect();
    // One read of the string table, as far as the farthest name.
    let strlen = entries
        .iter()
        .map(|e| u64::from(e.0) + MAX_NAME as u64)
        .max()
        .unwrap_or(0)
        .min(MAX_STRTAB);
    // The table may end near an unmapped page: what can be read is enough.
    let (strings, _) = read_prefix(mem, VirtAddr(strtab), strlen);
    let mut out = Vec::new();
    for (i, &(name, info, shndx, value, size)) in entries.iter().enumerate() {
        // Undefined, unnamed and section/file symbols say nothing about an address.
        if shndx == 0 || value == 0 || name == 0 || matches!(info & 0xf, 3 | 4) {
            continue;
        }
        let Some(rest) = strings.get(name as usize..) else {
            continue;
        };
        let end = rest.iter().take(MAX_NAME).position(|&b| b == 0);
        let Some(end) = end else { continue };
        let kind = types
            .as_ref()
            .and_then(|t| t.get(i))
            .map(|&b| b as char)
            .filter(char::is_ascii_alphabetic)
            .unwrap_or_else(|| letter_of(info));
        out.push(ModuleSymbol {
            addr: value,
            size,
            kind,
            name: String::from_utf8_lossy(&rest[..end]).into_owned(),
        });
    }
    Ok((out, note))
}
