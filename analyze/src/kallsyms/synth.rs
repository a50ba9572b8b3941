//! A synthetic kallsyms table laid out as `scripts/kallsyms.c` would, in
//! [`SliceKernelMem`], with the VMCOREINFO that goes with it. Tests only.

use super::{AddressEncoding, TableOrder};
use crate::kmem::{SliceKernelMem, VirtAddr};
use crate::vmcoreinfo::Vmcoreinfo;

/// `_text`/`_stext` of the synthetic kernel.
pub const STEXT: u64 = 0xffff_ffff_8100_0000;
/// Where the table region starts.
pub const REGION: u64 = 0xffff_ffff_8200_0000;
/// Bytes of filler before and after the tables.
const FILLER: usize = 0x1800;

/// What to build.
#[derive(Clone, Debug)]
pub struct Spec {
    /// (type, name, address) in table order.
    pub symbols: Vec<(char, String, u64)>,
    pub encoding: AddressEncoding,
    pub order: TableOrder,
    /// 6.1+ ULEB128 lengths; otherwise one literal byte.
    pub two_byte: bool,
    /// `kallsyms_seqs_of_names` element size between markers and token table (6.2/6.3).
    pub seqs: Option<u64>,
    /// 4, or 8 before 4.20.
    pub marker_size: u64,
    pub osrelease: &'static str,
}

/// Multi-character tokens the compressor uses (the kernel picks frequent pairs; any
/// fixed set exercises the decoder the same way).
const TOKENS: [&str; 12] = [
    "sys_", "do_", "_handle", "crash", "percpu", "_64", "start", "init", "fn_", "ker", "Tfn_",
    "tfn_",
];

/// The built table.
pub struct Built {
    pub mem: SliceKernelMem,
    pub vmci: Vmcoreinfo,
    /// The bytes of the region at [`REGION`].
    pub bytes: Vec<u8>,
    pub num_syms: u64,
    pub names: u64,
    pub markers: u64,
    pub token_table: u64,
    pub token_index: u64,
    pub addresses: u64,
    pub relative_base: Option<u64>,
}

impl Built {
    /// Memory of the region with `f` applied to its bytes.
    pub fn mem_with(&self, f: impl FnOnce(&mut Vec<u8>)) -> SliceKernelMem {
        let mut b = self.bytes.clone();
        f(&mut b);
        SliceKernelMem::new(vec![(VirtAddr(REGION), b)])
    }

    /// Offset of `va` in [`Built::bytes`].
    pub fn off(&self, va: u64) -> usize {
        (va - REGION) as usize
    }
}

/// A deterministic filler byte stream with no NULs.
pub fn filler(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x % 255) as u8 + 1
        })
        .collect()
}

/// The symbol set of a small kernel: aliases at `_text`, > 256 text symbols with every
/// digit, duplicates, a name longer than 127 tokens, data after a big gap.
pub fn kernel_symbols(percpu: bool) -> Vec<(char, String, u64)> {
    let mut v: Vec<(char, String, u64)> = Vec::new();
    if percpu {
        v.push(('A', "fixed_percpu_data".into(), 0));
        v.push(('A', "cpu_number".into(), 0x1c));
        v.push(('A', "irq_stack_backing_store".into(), 0x4000));
    }
    v.push(('T', "startup_64".into(), STEXT));
    v.push(('T', "_stext".into(), STEXT));
    v.push(('T', "_text".into(), STEXT));
    v.push(('t', "x86_64_start_kernel".into(), STEXT + 0x100));
    v.push(('t', "cleanup".into(), STEXT + 0x180));
    v.push(('t', format!("long_{}", "q".repeat(150)), STEXT + 0x200));
    for i in 0..600u64 {
        let kind = if i % 3 == 0 { 't' } else { 'T' };
        v.push((
            kind,
            format!("fn_{i:04}_sys_do_work{}", i % 10),
            STEXT + 0x1000 + i * 0x40,
        ));
    }
    let mut a = STEXT + 0x1000 + 600 * 0x40;
    for (kind, name, size) in [
        ('T', "do_syscall_64", 0x90u64),
        ('t', "sysrq_handle_crash", 0x20),
        ('t', "cleanup", 0x30),
        ('t', "dup_name", 0x10),
        ('T', "panic", 0x2a0),
        ('T', "_etext", 0),
    ] {
        v.push((kind, name.into(), a));
        a += size;
    }
    let data = STEXT + 0x100_0000;
    v.push(('d', "dup_name".into(), data));
    v.push(('D', "init_uts_ns".into(), data + 0x40));
    v.push(('d', "prb".into(), data + 0x1000));
    v.push(('B', "_end".into(), data + 0x2000));
    v
}

/// A spec with the standard symbols.
pub fn spec(encoding: AddressEncoding, order: TableOrder, two_byte: bool) -> Spec {
    Spec {
        symbols: kernel_symbols(encoding == AddressEncoding::AbsolutePercpu),
        encoding,
        order,
        two_byte,
        seqs: None,
        marker_size: 4,
        osrelease: if two_byte {
            "6.8.0-synthetic"
        } else {
            "5.15.0-synthetic"
        },
    }
}

/// Compresses `s` with literal bytes and [`TOKENS`] (longest match first).
fn compress(s: &[u8], slots: &[(u8, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let best = slots
            .iter()
            .filter(|(_, t)| s[i..].starts_with(t))
            .max_by_key(|(_, t)| t.len());
        match best {
            Some((id, t)) => {
                out.push(*id);
                i += t.len();
            }
            None => {
                out.push(s[i]);
                i += 1;
            }
        }
    }
    out
}

fn pad8(b: &mut Vec<u8>) {
    while b.len() % 8 != 0 {
        b.push(0);
    }
}

fn hex(v: u64) -> String {
    format!("{v:x}")
}

/// Lays the tables out.
pub fn build(spec: &Spec) -> Built {
    let n = spec.symbols.len();
    // Token table: literal bytes at their own index, multi-char tokens in unused slots.
    let mut used = [false; 256];
    for (k, name, _) in &spec.symbols {
        used[*k as usize] = true;
        for b in name.bytes() {
            used[b as usize] = true;
        }
    }
    let mut table: Vec<Vec<u8>> = (0..256u32)
        .map(|i| {
            if used[i as usize] {
                vec![i as u8]
            } else {
                Vec::new()
            }
        })
        .collect();
    let free: Vec<u8> = (0..=255u8).rev().filter(|&i| !used[i as usize]).collect();
    let mut slots: Vec<(u8, &[u8])> = Vec::new();
    for (t, &id) in TOKENS.iter().zip(&free) {
        table[id as usize] = t.as_bytes().to_vec();
        slots.push((id, t.as_bytes()));
    }
    let mut tt = Vec::new();
    let mut ti = Vec::new();
    for t in &table {
        ti.extend_from_slice(&(tt.len() as u16).to_le_bytes());
        tt.extend_from_slice(t);
        tt.push(0);
    }
    // Names and markers.
    let mut names = Vec::new();
    let mut markers = Vec::new();
    for (i, (k, name, _)) in spec.symbols.iter().enumerate() {
        if i % 256 == 0 {
            markers.push(names.len() as u64);
        }
        let mut full = vec![*k as u8];
        full.extend_from_slice(name.as_bytes());
        let c = compress(&full, &slots);
        let len = c.len();
        if spec.two_byte && len > 0x7f {
            names.push((len as u8 & 0x7f) | 0x80);
            names.push((len >> 7) as u8);
        } else {
            assert!(len <= 0xff);
            names.push(len as u8);
        }
        names.extend_from_slice(&c);
    }

    let mut b = filler(FILLER, 7);
    pad8(&mut b);
    let at = |b: &Vec<u8>| REGION + b.len() as u64;
    let mut r = Built {
        mem: SliceKernelMem::default(),
        vmci: Vmcoreinfo::default(),
        bytes: Vec::new(),
        num_syms: 0,
        names: 0,
        markers: 0,
        token_table: 0,
        token_index: 0,
        addresses: 0,
        relative_base: None,
    };
    let rb = spec
        .symbols
        .iter()
        .find(|(k, _, _)| *k != 'A')
        .map_or(0, |s| s.2);
    let addrs = |b: &mut Vec<u8>, r: &mut Built| {
        pad8(b);
        r.addresses = at(b);
        for (i, (k, _, a)) in spec.symbols.iter().enumerate() {
            match spec.encoding {
                AddressEncoding::Absolute => b.extend_from_slice(&a.to_le_bytes()),
                AddressEncoding::BaseRelative => {
                    b.extend_from_slice(&((a - rb) as u32).to_le_bytes())
                }
                AddressEncoding::AbsolutePercpu => {
                    let o = if *k == 'A' {
                        *a as i32
                    } else {
                        (rb as i64 - *a as i64 - 1) as i32
                    };
                    b.extend_from_slice(&o.to_le_bytes())
                }
                AddressEncoding::PlaceRelative => {
                    let place = r.addresses + 4 * i as u64;
                    b.extend_from_slice(&(a.wrapping_sub(place) as i64 as i32).to_le_bytes())
                }
            }
        }
        if matches!(
            spec.encoding,
            AddressEncoding::BaseRelative | AddressEncoding::AbsolutePercpu
        ) {
            pad8(b);
            r.relative_base = Some(at(b));
            b.extend_from_slice(&rb.to_le_bytes());
        }
    };
    let seqs = |b: &mut Vec<u8>, es: u64| {
        pad8(b);
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&x, &y| spec.symbols[x].1.cmp(&spec.symbols[y].1));
        for i in order {
            let v = i as u32;
            if es == 3 {
                b.extend_from_slice(&v.to_be_bytes()[1..]);
            } else {
                b.extend_from_slice(&v.to_le_bytes());
            }
        }
    };
    if spec.order == TableOrder::AddressesFirst {
        addrs(&mut b, &mut r);
    }
    pad8(&mut b);
    r.num_syms = at(&b);
    b.extend_from_slice(&(n as u32).to_le_bytes());
    pad8(&mut b);
    r.names = at(&b);
    b.extend_from_slice(&names);
    pad8(&mut b);
    r.markers = at(&b);
    for m in &markers {
        if spec.marker_size == 8 {
            b.extend_from_slice(&m.to_le_bytes());
        } else {
            b.extend_from_slice(&(*m as u32).to_le_bytes());
        }
    }
    if let (TableOrder::AddressesFirst, Some(es)) = (spec.order, spec.seqs) {
        seqs(&mut b, es);
    }
    pad8(&mut b);
    r.token_table = at(&b);
    b.extend_from_slice(&tt);
    pad8(&mut b);
    r.token_index = at(&b);
    b.extend_from_slice(&ti);
    if spec.order == TableOrder::NamesFirst {
        addrs(&mut b, &mut r);
        if let Some(es) = spec.seqs {
            seqs(&mut b, es);
        }
    }
    b.extend_from_slice(&filler(FILLER, 11));

    let mut text = format!(
        "OSRELEASE={}\nPAGESIZE=4096\nSYMBOL(_stext)={}\nSYMBOL(kallsyms_names)={}\n\
         SYMBOL(kallsyms_num_syms)={}\nSYMBOL(kallsyms_token_table)={}\n\
         SYMBOL(kallsyms_token_index)={}\n",
        spec.osrelease,
        hex(STEXT),
        hex(r.names),
        hex(r.num_syms),
        hex(r.token_table),
        hex(r.token_index)
    );
    match spec.encoding {
        AddressEncoding::Absolute => {
            text += &format!("SYMBOL(kallsyms_addresses)={}\n", hex(r.addresses));
        }
        _ => {
            text += &format!("SYMBOL(kallsyms_offsets)={}\n", hex(r.addresses));
            if let Some(rbva) = r.relative_base {
                text += &format!("SYMBOL(kallsyms_relative_base)={}\n", hex(rbva));
            }
        }
    }
    r.vmci = Vmcoreinfo::parse(&text);
    r.mem = SliceKernelMem::new(vec![(VirtAddr(REGION), b.clone())]);
    r.bytes = b;
    r
}
