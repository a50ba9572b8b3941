//! qemu's x86 register dump (`x86_cpu_dump_state`, `target/i386/cpu-dump.c`), as printed
//! after a KVM error with `CPU_DUMP_CODE`: the general registers in the 64-bit (`RAX=`) or
//! 32-bit (`EAX=`) layout, the `RIP`/`EIP` line with `CPL II A20 SMM HLT`, eight segment
//! lines, `GDT`/`IDT`, control and debug registers, `EFER` and the `Code=` bytes.
//!
//! Every value is checked against the width qemu prints it with (`%04x`, `%08x`, `%016lx`):
//! a token cut short by truncation or a value from some other program's line (the host
//! kernel's `dump_vmcs()` prints `RSP = 0x...`, `CR0=0000000080050033`) is not taken.

use serde::Serialize;

/// Bytes qemu prints on the `Code=` line (`DUMP_CODE_BYTES_TOTAL`).
pub const CODE_BYTES_TOTAL: usize = 50;

/// More bytes than this on one `Code=` line are not qemu's; the rest is ignored.
const MAX_CODE_BYTES: usize = 64;

/// At most this many tokens of a line are looked at.
const MAX_TOKENS: usize = 32;

/// One segment line: `CS =0038 0000000000000000 ffffffff 00a09b00 DPL=0 CS64 [-RA]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Segment {
    /// The selector (`%04x`).
    pub selector: u16,
    /// The base (8 or 16 hex digits).
    #[serde(with = "coroner_formats::hex")]
    pub base: u64,
    /// The limit, expanded by granularity as qemu keeps it.
    pub limit: u32,
    /// The descriptor flags masked with `0x00ffff00` (type, S, DPL, P, AVL, L, D/B, G).
    pub flags: u32,
    /// `DPL=n`: printed only in protected mode for a present descriptor.
    pub dpl: Option<u8>,
    /// The descriptor kind qemu names: `CS64`, `CS32`, `CS16`, `DS`, `DS16`, `LDT`,
    /// `TSS64-busy`, `TSS32-busy`, `IntGate64`, ... (None when not printed).
    pub kind: Option<String>,
    /// The attribute letters inside `[...]`: `CRA` for code, `EWA` for data, `-` when clear
    /// (e.g. `-RA`); None for system segments and when not printed.
    pub attrs: Option<String>,
}

/// The `Code=` bytes: 50 bytes around RIP as read through the guest's page tables.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CodeBytes {
    /// The bytes in order; None for a byte qemu could not read (`??`).
    pub bytes: Vec<Option<u8>>,
    /// Index of the byte at RIP (the one printed as `<xx>`).
    pub rip_index: Option<usize>,
}

impl CodeBytes {
    /// The bytes from RIP on, up to the first unknown byte.
    // The name is the interface's: "from RIP on", not a constructor.
    #[allow(clippy::wrong_self_convention)]
    pub fn from_rip(&self) -> Vec<u8> {
        let Some(start) = self.rip_index else {
            return Vec::new();
        };
        self.bytes.iter().skip(start).map_while(|b| *b).collect()
    }
}

/// qemu's `x86_cpu_dump_state` text, parsed.
///
/// A field qemu did not print, or whose text could not be read at qemu's width, is None.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RegDump {
    /// 64 for the `RAX=` layout (64-bit code segment), 32 for the `EAX=` layout (real,
    /// 16/32-bit protected and compatibility mode); 0 while no general register was read.
    pub layout_bits: u8,
    /// General registers by x86 register number: 0 RAX, 1 RCX, 2 RDX, 3 RBX, 4 RSP, 5 RBP,
    /// 6 RSI, 7 RDI, 8..=15 R8..R15 (only 0..=7 in the 32-bit layout).
    #[serde(with = "coroner_formats::hex::option_vec")]
    pub gprs: [Option<u64>; 16],
    /// `RIP=` or `EIP=`.
    #[serde(with = "coroner_formats::hex::option")]
    pub rip: Option<u64>,
    /// `RFL=` or `EFL=`: the full EFLAGS.
    #[serde(with = "coroner_formats::hex::option")]
    pub rflags: Option<u64>,
    /// `CPL=`.
    pub cpl: Option<u8>,
    /// `II=`: interrupt shadow (STI / MOV SS).
    pub ii: Option<bool>,
    /// `A20=`: the A20 gate.
    pub a20: Option<bool>,
    /// `SMM=`: in system-management mode.
    pub smm: Option<bool>,
    /// `HLT=`: the vCPU is halted.
    pub hlt: Option<bool>,
    /// `ES =`.
    pub es: Option<Segment>,
    /// `CS =`.
    pub cs: Option<Segment>,
    /// `SS =`.
    pub ss: Option<Segment>,
    /// `DS =`.
    pub ds: Option<Segment>,
    /// `FS =`.
    pub fs: Option<Segment>,
    /// `GS =`.
    pub gs: Option<Segment>,
    /// `LDT=`.
    pub ldt: Option<Segment>,
    /// `TR =`.
    pub tr: Option<Segment>,
    /// `GDT=`: base and limit.
    #[serde(with = "coroner_formats::hex::option_base_limit")]
    pub gdt: Option<(u64, u32)>,
    /// `IDT=`: base and limit.
    #[serde(with = "coroner_formats::hex::option_base_limit")]
    pub idt: Option<(u64, u32)>,
    /// `CR0=`.
    #[serde(with = "coroner_formats::hex::option")]
    pub cr0: Option<u64>,
    /// `CR2=`.
    #[serde(with = "coroner_formats::hex::option")]
    pub cr2: Option<u64>,
    /// `CR3=`.
    #[serde(with = "coroner_formats::hex::option")]
    pub cr3: Option<u64>,
    /// `CR4=`.
    #[serde(with = "coroner_formats::hex::option")]
    pub cr4: Option<u64>,
    /// Debug registers: DR0-3 at 0..=3, DR6 at 6, DR7 at 7 (4 and 5 stay None).
    #[serde(with = "coroner_formats::hex::option_vec")]
    pub dr: [Option<u64>; 8],
    /// `EFER=`.
    #[serde(with = "coroner_formats::hex::option")]
    pub efer: Option<u64>,
    /// `Code=`.
    pub code: Option<CodeBytes>,
}

/// What the first `KEY=` of a dump line names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Field {
    /// A general register, by x86 number.
    Gpr(usize),
    /// `RIP`/`EIP`.
    Rip,
    /// `RFL`/`EFL`.
    Rflags,
    /// `CPL`.
    Cpl,
    /// `II`.
    Ii,
    /// `A20`.
    A20,
    /// `SMM`.
    Smm,
    /// `HLT`.
    Hlt,
    /// A segment, by index in [`SEGMENTS`].
    Seg(usize),
    /// `GDT`.
    Gdt,
    /// `IDT`.
    Idt,
    /// `CR0`, `CR2`, `CR3`, `CR4`.
    Cr(u8),
    /// `DRn`.
    Dr(usize),
    /// `EFER`.
    Efer,
    /// `Code`.
    Code,
    /// Part of some dump, not kept: `CCS`/`CCD`/`CCO` (TCG) and the APX `R16`..`R31`.
    Ignored,
}

/// Segment names in qemu's order.
const SEGMENTS: [&str; 8] = ["ES", "CS", "SS", "DS", "FS", "GS", "LDT", "TR"];

const GPR64: [&str; 16] = [
    "RAX", "RCX", "RDX", "RBX", "RSP", "RBP", "RSI", "RDI", "R8", "R9", "R10", "R11", "R12", "R13",
    "R14", "R15",
];
const GPR32: [&str; 8] = ["EAX", "ECX", "EDX", "EBX", "ESP", "EBP", "ESI", "EDI"];

/// Descriptor kinds qemu prints after `DPL=n` (`cpu-dump.c`, `sys_type_name` and the
/// code/data names).
const KINDS: [&str; 24] = [
    "CS64",
    "CS32",
    "CS16",
    "DS",
    "DS16",
    "Reserved",
    "TSS16-avl",
    "LDT",
    "TSS16-busy",
    "CallGate16",
    "TaskGate",
    "IntGate16",
    "TrapGate16",
    "TSS32-avl",
    "TSS32-busy",
    "CallGate32",
    "IntGate32",
    "TrapGate32",
    "<hiword>",
    "TSS64-avl",
    "TSS64-busy",
    "CallGate64",
    "IntGate64",
    "TrapGate64",
];

/// The field a key names, and the layout (64 or 32) the key belongs to.
fn field_of(key: &str) -> Option<(Field, Option<u8>)> {
    if let Some(i) = GPR64.iter().position(|k| *k == key) {
        return Some((Field::Gpr(i), Some(64)));
    }
    if let Some(i) = GPR32.iter().position(|k| *k == key) {
        return Some((Field::Gpr(i), Some(32)));
    }
    if let Some(i) = SEGMENTS.iter().position(|k| *k == key) {
        return Some((Field::Seg(i), None));
    }
    let f = match key {
        "RIP" => return Some((Field::Rip, Some(64))),
        "EIP" => return Some((Field::Rip, Some(32))),
        "RFL" => return Some((Field::Rflags, Some(64))),
        "EFL" => return Some((Field::Rflags, Some(32))),
        "CPL" => Field::Cpl,
        "II" => Field::Ii,
        "A20" => Field::A20,
        "SMM" => Field::Smm,
        "HLT" => Field::Hlt,
        "GDT" => Field::Gdt,
        "IDT" => Field::Idt,
        "CR0" => Field::Cr(0),
        "CR2" => Field::Cr(2),
        "CR3" => Field::Cr(3),
        "CR4" => Field::Cr(4),
        "DR0" => Field::Dr(0),
        "DR1" => Field::Dr(1),
        "DR2" => Field::Dr(2),
        "DR3" => Field::Dr(3),
        "DR6" => Field::Dr(6),
        "DR7" => Field::Dr(7),
        "EFER" => Field::Efer,
        "Code" => Field::Code,
        "CCS" | "CCD" | "CCO" => Field::Ignored,
        _ => {
            let n: u32 = key.strip_prefix('R')?.parse().ok()?;
            if (16..=31).contains(&n) && !key.starts_with("R0") {
                Field::Ignored
            } else {
                return None;
            }
        }
    };
    Some((f, None))
}

/// The key before the line's first `=`: `RAX`, `R8` (from `R8 =`), `ES`, `GDT`, `Code`.
fn first_key(line: &str) -> Option<&str> {
    let (key, _) = line.split_once('=')?;
    let key = key.trim_end_matches(' ');
    if key.is_empty() || key.len() > 4 || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    Some(key)
}

/// The field named by the line's first key, with the layout it implies; for a line of bare
/// code-byte tokens (a wrapped `Code=` line), None.
pub(super) fn line_field(line: &str) -> Option<(Field, Option<u8>)> {
    field_of(first_key(line.trim_start())?)
}

/// True when `line` is made only of code-byte tokens (`8b`, `??`, `<0f>`), as the rest of a
/// wrapped `Code=` line is.
pub(super) fn is_code_continuation(line: &str) -> bool {
    let mut any = false;
    for tok in line.split_whitespace() {
        if code_token(tok).is_none() {
            return false;
        }
        any = true;
    }
    any
}

/// Number of code-byte tokens at the start of a `Code=` line's value.
pub(super) fn code_token_count(line: &str) -> usize {
    let Some((_, rest)) = line.split_once('=') else {
        return 0;
    };
    rest.split_whitespace()
        .take(MAX_CODE_BYTES + 1)
        .take_while(|t| code_token(t).is_some())
        .count()
}

/// One code token: `(byte, is_rip)`; the byte is None for `??`.
fn code_token(tok: &str) -> Option<(Option<u8>, bool)> {
    let (inner, rip) = match tok.strip_prefix('<').and_then(|t| t.strip_suffix('>')) {
        Some(inner) => (inner, true),
        None => (tok, false),
    };
    if inner == "??" {
        return Some((None, rip));
    }
    if inner.len() != 2 || !inner.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u8::from_str_radix(inner, 16).ok().map(|b| (Some(b), rip))
}

/// A hex value printed with one of `widths` digits (no `0x`).
fn hex_w(s: &str, widths: &[usize]) -> Option<u64> {
    if !widths.contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

fn hex32_w(s: &str, widths: &[usize]) -> Option<u32> {
    hex_w(s, widths).and_then(|v| u32::try_from(v).ok())
}

/// `0` or `1`.
fn bit(s: &str) -> Option<bool> {
    match s {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    }
}

/// `KEY=VALUE` pairs of a line; `R8 =x` gives `("R8", "x")`, `RSP = 0x1` gives `("RSP", "")`.
fn pairs(line: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut prev: Option<&str> = None;
    for tok in line.split_whitespace().take(MAX_TOKENS) {
        if let Some((k, v)) = tok.split_once('=') {
            let key = if k.is_empty() { prev.unwrap_or("") } else { k };
            out.push((key, v));
            prev = None;
        } else {
            prev = Some(tok);
        }
    }
    out
}

/// A segment line after the name: `=0038 0000000000000000 ffffffff 00a09b00 DPL=0 CS64 [-RA]`.
fn parse_segment(value: &str) -> Option<Segment> {
    let value = value.strip_prefix('=')?;
    // The selector follows `=` directly.
    if value.starts_with(char::is_whitespace) {
        return None;
    }
    let mut toks = value.split_whitespace().take(MAX_TOKENS);
    let selector = u16::try_from(hex_w(toks.next()?, &[4])?).ok()?;
    let base = hex_w(toks.next()?, &[8, 16])?;
    let limit = hex32_w(toks.next()?, &[8])?;
    let flags = hex32_w(toks.next()?, &[8])?;
    let mut seg = Segment {
        selector,
        base,
        limit,
        flags,
        dpl: None,
        kind: None,
        attrs: None,
    };
    let Some(dpl) = toks.next().and_then(|t| t.strip_prefix("DPL=")) else {
        return Some(seg);
    };
    seg.dpl = match dpl.parse::<u8>() {
        Ok(d) if d <= 3 && dpl.len() == 1 => Some(d),
        _ => return Some(seg),
    };
    let Some(kind) = toks.next() else {
        return Some(seg);
    };
    if !KINDS.contains(&kind) {
        return Some(seg);
    }
    seg.kind = Some(kind.to_string());
    if let Some(attrs) = toks
        .next()
        .and_then(|t| t.strip_prefix('['))
        .and_then(|t| t.strip_suffix(']'))
    {
        if attrs.len() == 3 && attrs.bytes().all(|b| b"CREWA-".contains(&b)) {
            seg.attrs = Some(attrs.to_string());
        }
    }
    Some(seg)
}

/// `GDT=     000000007f9ee698 00000047` after the name.
fn parse_table(value: &str) -> Option<(u64, u32)> {
    let mut toks = value.strip_prefix('=')?.split_whitespace();
    let base = hex_w(toks.next()?, &[8, 16])?;
    let limit = hex32_w(toks.next()?, &[8])?;
    Some((base, limit))
}

/// Appends code tokens from `text` to `code`, up to `cap` bytes; stops at the first token
/// that is not a code byte. Returns how many were taken.
fn push_code(text: &str, code: &mut CodeBytes, cap: usize) -> usize {
    let mut n = 0;
    for tok in text.split_whitespace() {
        if code.bytes.len() >= cap {
            break;
        }
        let Some((byte, rip)) = code_token(tok) else {
            break;
        };
        if rip {
            if code.rip_index.is_some() {
                // A second `<..>`: not one dump's line.
                break;
            }
            code.rip_index = Some(code.bytes.len());
        }
        code.bytes.push(byte);
        n += 1;
    }
    n
}

impl RegDump {
    /// Fills from one (already de-prefixed) line; false if the line is not part of a
    /// register dump.
    ///
    /// A line of bare code-byte tokens continues an unfinished `Code=` line (fewer than 50
    /// bytes so far). A line whose general registers belong to the other layout than the
    /// one already read (`EAX=` after `RAX=`) is refused.
    pub fn absorb_line(&mut self, line: &str) -> bool {
        let t = line.trim();
        let Some(key) = first_key(t) else {
            return self.absorb_code_continuation(t);
        };
        let Some((field, layout)) = field_of(key) else {
            return false;
        };
        if let (Some(l), true) = (layout, self.layout_bits != 0) {
            if l != self.layout_bits {
                return false;
            }
        }
        // `first_key` found a `=`: `eq_value` starts with it, `value` follows it.
        let eq_value = t.find('=').map_or("", |i| &t[i..]);
        let value = eq_value.get(1..).unwrap_or_default();
        match field {
            Field::Seg(i) => match parse_segment(eq_value) {
                Some(seg) => {
                    *self.segment_mut(i) = Some(seg);
                    true
                }
                None => false,
            },
            Field::Gdt | Field::Idt => match parse_table(eq_value) {
                Some(tab) => {
                    if field == Field::Gdt {
                        self.gdt = Some(tab);
                    } else {
                        self.idt = Some(tab);
                    }
                    true
                }
                None => false,
            },
            Field::Code => {
                let mut code = CodeBytes {
                    bytes: Vec::new(),
                    rip_index: None,
                };
                if value.starts_with(char::is_whitespace)
                    || push_code(value, &mut code, MAX_CODE_BYTES) == 0
                {
                    return false;
                }
                self.code = Some(code);
                true
            }
            Field::Ignored => true,
            _ => self.absorb_pairs(t, layout),
        }
    }

    /// A wrapped `Code=` line's next part.
    fn absorb_code_continuation(&mut self, t: &str) -> bool {
        if !is_code_continuation(t) {
            return false;
        }
        match &mut self.code {
            Some(code) if code.bytes.len() < CODE_BYTES_TOTAL => {
                push_code(t, code, MAX_CODE_BYTES) > 0
            }
            _ => false,
        }
    }

    /// `KEY=value` lines: general registers, RIP line, CR, DR, EFER.
    fn absorb_pairs(&mut self, t: &str, line_layout: Option<u8>) -> bool {
        let mut any = false;
        for (n, (key, v)) in pairs(t).into_iter().enumerate() {
            let Some((field, layout)) = field_of(key) else {
                continue;
            };
            if let (Some(l), Some(ll)) = (layout, line_layout) {
                if l != ll {
                    continue;
                }
            }
            let layout = layout.or(line_layout);
            let wide: &[usize] = if layout == Some(32) { &[8] } else { &[16] };
            let stored = match field {
                Field::Gpr(i) => {
                    // The 32-bit layout names only the first eight.
                    let v = hex_w(v, wide);
                    if let (Some(v), Some(slot)) = (v, self.gprs.get_mut(i)) {
                        *slot = Some(v);
                        true
                    } else {
                        false
                    }
                }
                Field::Rip => set(&mut self.rip, hex_w(v, wide)),
                Field::Rflags => set(&mut self.rflags, hex_w(v, &[8])),
                Field::Cpl => set(
                    &mut self.cpl,
                    v.parse::<u8>().ok().filter(|c| *c <= 3 && v.len() == 1),
                ),
                Field::Ii => set(&mut self.ii, bit(v)),
                Field::A20 => set(&mut self.a20, bit(v)),
                Field::Smm => set(&mut self.smm, bit(v)),
                Field::Hlt => set(&mut self.hlt, bit(v)),
                Field::Cr(n) => {
                    let widths: &[usize] = if n == 0 || n == 4 { &[8] } else { &[8, 16] };
                    let slot = match n {
                        0 => &mut self.cr0,
                        2 => &mut self.cr2,
                        3 => &mut self.cr3,
                        _ => &mut self.cr4,
                    };
                    set(slot, hex_w(v, widths))
                }
                Field::Dr(i) => match self.dr.get_mut(i) {
                    Some(slot) => set(slot, hex_w(v, &[8, 16])),
                    None => false,
                },
                Field::Efer => set(&mut self.efer, hex_w(v, &[16])),
                Field::Ignored => true,
                Field::Seg(_) | Field::Gdt | Field::Idt | Field::Code => false,
            };
            if !stored && n == 0 {
                // The line's first value names its shape: unreadable, the line is not
                // qemu's (or is cut), and its other values are not trusted either.
                return false;
            }
            if stored {
                if let Some(l) = layout.filter(|_| matches!(field, Field::Gpr(_) | Field::Rip)) {
                    self.layout_bits = l;
                }
                any = true;
            }
        }
        any
    }

    fn segment_mut(&mut self, i: usize) -> &mut Option<Segment> {
        match i {
            0 => &mut self.es,
            1 => &mut self.cs,
            2 => &mut self.ss,
            3 => &mut self.ds,
            4 => &mut self.fs,
            5 => &mut self.gs,
            6 => &mut self.ldt,
            _ => &mut self.tr,
        }
    }

    /// True when `field` already holds a value.
    pub(super) fn has(&self, field: Field) -> bool {
        match field {
            Field::Gpr(i) => self.gprs.get(i).is_some_and(Option::is_some),
            Field::Rip => self.rip.is_some(),
            Field::Rflags => self.rflags.is_some(),
            Field::Cpl => self.cpl.is_some(),
            Field::Ii => self.ii.is_some(),
            Field::A20 => self.a20.is_some(),
            Field::Smm => self.smm.is_some(),
            Field::Hlt => self.hlt.is_some(),
            Field::Seg(i) => match i {
                0 => self.es.is_some(),
                1 => self.cs.is_some(),
                2 => self.ss.is_some(),
                3 => self.ds.is_some(),
                4 => self.fs.is_some(),
                5 => self.gs.is_some(),
                6 => self.ldt.is_some(),
                _ => self.tr.is_some(),
            },
            Field::Gdt => self.gdt.is_some(),
            Field::Idt => self.idt.is_some(),
            Field::Cr(n) => match n {
                0 => self.cr0.is_some(),
                2 => self.cr2.is_some(),
                3 => self.cr3.is_some(),
                _ => self.cr4.is_some(),
            },
            Field::Dr(i) => self.dr.get(i).is_some_and(Option::is_some),
            Field::Efer => self.efer.is_some(),
            Field::Code => self.code.is_some(),
            Field::Ignored => false,
        }
    }

    /// True when no register line was absorbed.
    pub fn is_empty(&self) -> bool {
        *self == RegDump::default()
    }
}

fn set<T>(slot: &mut Option<T>, v: Option<T>) -> bool {
    match v {
        Some(v) => {
            *slot = Some(v);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump(text: &str) -> RegDump {
        let mut d = RegDump::default();
        for line in text.lines() {
            d.absorb_line(line);
        }
        d
    }

    const DUMP64: &str = "\
RAX=0000000000000000 RBX=0000000000000001 RCX=0000000000000002 RDX=0000000000000003
RSI=0000000000000006 RDI=000000007e423628 RBP=000000007fee6a90 RSP=000000007fee6a08
R8 =0000000000000008 R9 =0000000000000080 R10=0000000000000010 R11=0000000000000011
R12=000000007eeaf828 R13=0000000000000013 R14=0000000000000014 R15=000000007fee6a67
RIP=00000000000b0000 RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=0
ES =0030 0000000000000000 ffffffff 00c09300 DPL=0 DS   [-WA]
CS =0038 0000000000000000 ffffffff 00a09b00 DPL=0 CS64 [-RA]
SS =0030 0000000000000000 ffffffff 00c09300 DPL=0 DS   [-WA]
DS =0030 0000000000000000 ffffffff 00c09300 DPL=0 DS   [-WA]
FS =0030 0000000000000000 ffffffff 00c09300 DPL=0 DS   [-WA]
GS =0030 0000000000000000 ffffffff 00c09300 DPL=0 DS   [-WA]
LDT=0000 0000000000000000 0000ffff 00008200 DPL=0 LDT
TR =0000 0000000000000000 0000ffff 00008b00 DPL=0 TSS64-busy
GDT=     000000007f9ee698 00000047
IDT=     000000007f27a018 00000fff
CR0=80010033 CR2=0000000000000000 CR3=000000007fc01000 CR4=00000668
DR0=0000000000000000 DR1=0000000000000001 DR2=0000000000000002 DR3=0000000000000003 
DR6=00000000ffff0ff0 DR7=0000000000000400
EFER=0000000000000d00
Code=00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 <ff> ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff";

    #[test]
    fn layout_64() {
        let d = dump(DUMP64);
        assert_eq!(d.layout_bits, 64);
        assert_eq!(d.gprs[0], Some(0));
        assert_eq!(d.gprs[3], Some(1)); // RBX
        assert_eq!(d.gprs[1], Some(2)); // RCX
        assert_eq!(d.gprs[2], Some(3)); // RDX
        assert_eq!(d.gprs[4], Some(0x7fee6a08)); // RSP
        assert_eq!(d.gprs[7], Some(0x7e423628)); // RDI
        assert_eq!(d.gprs[8], Some(8));
        assert_eq!(d.gprs[9], Some(0x80));
        assert_eq!(d.gprs[15], Some(0x7fee6a67));
        assert_eq!(d.rip, Some(0xb0000));
        assert_eq!(d.rflags, Some(0x246));
        assert_eq!(
            (d.cpl, d.ii, d.a20, d.smm, d.hlt),
            (Some(0), Some(false), Some(true), Some(false), Some(false))
        );
        let cs = d.cs.clone().unwrap();
        assert_eq!(cs.selector, 0x38);
        assert_eq!(cs.flags, 0x00a09b00);
        assert_eq!(cs.dpl, Some(0));
        assert_eq!(cs.kind.as_deref(), Some("CS64"));
        assert_eq!(cs.attrs.as_deref(), Some("-RA"));
        assert_eq!(d.ds.clone().unwrap().kind.as_deref(), Some("DS"));
        assert_eq!(d.ldt.clone().unwrap().kind.as_deref(), Some("LDT"));
        assert_eq!(d.ldt.clone().unwrap().attrs, None);
        assert_eq!(d.tr.clone().unwrap().kind.as_deref(), Some("TSS64-busy"));
        assert_eq!(d.gdt, Some((0x7f9ee698, 0x47)));
        assert_eq!(d.idt, Some((0x7f27a018, 0xfff)));
        assert_eq!(d.cr0, Some(0x80010033));
        assert_eq!(d.cr3, Some(0x7fc01000));
        assert_eq!(d.cr4, Some(0x668));
        assert_eq!(d.dr[..4], [Some(0), Some(1), Some(2), Some(3)]);
        assert_eq!(d.dr[4], None);
        assert_eq!(d.dr[6], Some(0xffff0ff0));
        assert_eq!(d.dr[7], Some(0x400));
        assert_eq!(d.efer, Some(0xd00));
        let code = d.code.clone().unwrap();
        assert_eq!(code.bytes.len(), 50);
        assert_eq!(code.rip_index, Some(20));
        assert_eq!(code.from_rip(), vec![0xff; 30]);
        assert!(!d.is_empty());
    }

    #[test]
    fn layout_32_real_mode() {
        let d = dump(
            "\
EAX=00000000 EBX=00000000 ECX=000086d4 EDX=00000000
ESI=00000000 EDI=00000000 EBP=000086d4 ESP=00006d7c
EIP=00007acf EFL=00000002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=0
ES =0000 00000000 ffffffff 00809300
CS =f000 000f0000 ffffffff 00809b00
LDT=0000 00000000 0000ffff 00008200
GDT=     000f6200 00000037
CR0=00000010 CR2=00000000 CR3=00000000 CR4=00000000
EFER=0000000000000000",
        );
        assert_eq!(d.layout_bits, 32);
        assert_eq!(d.gprs[1], Some(0x86d4));
        assert_eq!(d.gprs[4], Some(0x6d7c));
        assert_eq!(d.gprs[8], None);
        assert_eq!(d.rip, Some(0x7acf));
        let cs = d.cs.unwrap();
        assert_eq!(
            cs,
            Segment {
                selector: 0xf000,
                base: 0xf0000,
                limit: 0xffffffff,
                flags: 0x00809b00,
                dpl: None,
                kind: None,
                attrs: None
            }
        );
        assert_eq!(d.gdt, Some((0xf6200, 0x37)));
        assert_eq!(d.cr0, Some(0x10));
        assert_eq!(d.efer, Some(0));
    }

    #[test]
    fn layout_conflict_refused() {
        let mut d = RegDump::default();
        assert!(d.absorb_line("RAX=0000000000000001 RBX=0000000000000002"));
        assert!(!d.absorb_line("EAX=00000005 EBX=00000006 ECX=00000007 EDX=00000008"));
        assert_eq!(d.gprs[0], Some(1));
        assert_eq!(d.layout_bits, 64);
    }

    #[test]
    fn widths_checked() {
        let mut d = RegDump::default();
        // Host kernel dump_vmcs() lines are not qemu's.
        assert!(!d.absorb_line("RSP = 0xffff898cacda2c90  RIP = 0x0000000000008000"));
        assert!(!d.absorb_line("CR0=0000000080050033 CR3=00000001226c8004 CR4=00000000001726e0"));
        assert!(!d.absorb_line("EFER= 0x0000000000000d01"));
        assert!(!d.absorb_line("CS=0010 SS=0018 DS=0000 ES=0000 FS=0000 GS=0000 TR=0040"));
        assert!(!d.absorb_line("CS:   sel=0xc200, attr=0x08093, limit=0xffffffff"));
        assert!(!d.absorb_line("RFLAGS=0x00000002         DR7 = 0x0000000000000400"));
        // Truncated tokens.
        assert!(!d.absorb_line("GDT=     c3f2a000 0000"));
        assert!(!d.absorb_line("GS =0000 00000000 0000ffff 000"));
        assert!(d.absorb_line("DR6=00000000ffff0ff0 DR7=00000"));
        assert_eq!(d.dr[6], Some(0xffff0ff0));
        assert_eq!(d.dr[7], None);
        // Huge numbers.
        assert!(!d.absorb_line("RAX=ffffffffffffffffffffffffffffffffffffff"));
        assert!(!d.absorb_line("EFER=0x00000000000000d01"));
        assert_eq!(d.gprs, [None; 16]);
        assert_eq!(d.gdt, None);
        assert_eq!(d.gs, None);
    }

    #[test]
    fn wrapped_key_boundaries() {
        let d = dump(
            "RAX=aaaaaaaaaaaaaaab RBX=0000000000000000 RCX=000000000000000c\n\
             RDX=0000000000000533\n\
             DR0=0000000000000000 DR1=0000000000000000 DR2=0000000000000000 \n\
             DR3=0000000000000005\n",
        );
        assert_eq!(d.gprs[0], Some(0xaaaaaaaaaaaaaaab));
        assert_eq!(d.gprs[2], Some(0x533));
        assert_eq!(d.dr[3], Some(5));
    }

    #[test]
    fn code_unknown_bytes_and_continuation() {
        let mut d = RegDump::default();
        assert!(d.absorb_line("Code=?? ?? 90 90 <0f> 0b ?? 00"));
        let code = d.code.clone().unwrap();
        assert_eq!(code.bytes[0], None);
        assert_eq!(code.rip_index, Some(4));
        assert_eq!(code.from_rip(), vec![0x0f, 0x0b]);
        assert!(d.absorb_line("01 02 03"));
        assert_eq!(d.code.clone().unwrap().bytes.len(), 11);
        // Unreadable byte at RIP.
        let mut d = RegDump::default();
        assert!(d.absorb_line("Code=00 11 <??> 22"));
        let code = d.code.unwrap();
        assert_eq!(code.rip_index, Some(2));
        assert_eq!(code.from_rip(), Vec::<u8>::new());
        // A Code= line qemu's abort cut into.
        let mut d = RegDump::default();
        assert!(!d.absorb_line("Code=kvm: ../hw/core/cpu-sysemu.c:77: cpu_asidx_from_attrs"));
        assert!(d.code.is_none());
        // No continuation without a Code= line.
        assert!(!d.absorb_line("01 02 03"));
        assert!(d.is_empty());
    }

    #[test]
    fn collapsed_spaces() {
        let d = dump(
            "ES =002b 0000000000000000 ffffffff 00c0f300 DPL=3 DS [-WA]\n\
             GDT= fffff801ed485000 0000006f\n\
             FS =00d8 23331000 ffffffff 00809300 DPL=0 DS16 [-WA]\n\
             GS =00e0 f6422900 00000018 00409100 DPL=0 DS   [--A]\n",
        );
        let es = d.es.unwrap();
        assert_eq!((es.dpl, es.kind.as_deref()), (Some(3), Some("DS")));
        assert_eq!(es.attrs.as_deref(), Some("-WA"));
        assert_eq!(d.gdt, Some((0xfffff801ed485000, 0x6f)));
        assert_eq!(d.fs.unwrap().kind.as_deref(), Some("DS16"));
        assert_eq!(d.gs.unwrap().attrs.as_deref(), Some("--A"));
    }

    #[test]
    fn unknown_kind_not_guessed() {
        let d = dump("CS =0010 0000000000000000 ffffffff 00a09b00 DPL=0 CS6");
        let cs = d.cs.unwrap();
        assert_eq!(cs.dpl, Some(0));
        assert_eq!(cs.kind, None);
    }

    #[test]
    fn not_dump_lines() {
        let mut d = RegDump::default();
        for l in [
            "",
            "KVM internal error. Suberror: 1",
            "emulation failure",
            "extra data[0]: 0x0000000000000001",
            "foo=bar",
            "=====",
            "R05=0000000000000000",
        ] {
            assert!(!d.absorb_line(l), "{l}");
        }
        assert!(d.is_empty());
        assert!(d.absorb_line("R16=0000000000000000 R17=0000000000000000"));
        assert!(d.is_empty());
    }
}
