//! Tests of both entry points on synthetic tables (`synth.rs`).

use super::synth::{build, filler, spec, Built, Spec, REGION, STEXT};
use super::*;
use crate::kmem::SliceKernelMem;
use crate::vmcoreinfo::Vmcoreinfo;

/// Every layout the kernel has written: (encoding, order, 2-byte lengths, seqs size).
fn variants() -> Vec<Spec> {
    let mut out = Vec::new();
    for order in [TableOrder::AddressesFirst, TableOrder::NamesFirst] {
        for enc in [
            AddressEncoding::Absolute,
            AddressEncoding::BaseRelative,
            AddressEncoding::AbsolutePercpu,
            AddressEncoding::PlaceRelative,
        ] {
            if enc == AddressEncoding::PlaceRelative && order == TableOrder::AddressesFirst {
                continue;
            }
            for two in [false, true] {
                for seqs in [None, Some(3), Some(4)] {
                    let mut s = spec(enc, order, two);
                    s.seqs = seqs;
                    out.push(s);
                }
            }
        }
    }
    let mut old = spec(AddressEncoding::Absolute, TableOrder::AddressesFirst, false);
    old.marker_size = 8;
    out.push(old);
    out
}

fn check_symbols(k: &Kallsyms, s: &Spec, what: &str) {
    assert_eq!(k.len(), s.symbols.len(), "{what}");
    for (got, (kind, name, addr)) in k.symbols().iter().zip(&s.symbols) {
        assert_eq!(
            (got.kind, got.name.as_str(), got.addr),
            (*kind, name.as_str(), *addr),
            "{what}"
        );
    }
}

fn expected_lengths(s: &Spec) -> NameLengths {
    if s.two_byte {
        NameLengths::TwoByte
    } else {
        NameLengths::OneByte
    }
}

#[test]
fn from_vmcoreinfo_decodes_every_layout() {
    for s in variants() {
        let b = build(&s);
        let what = format!(
            "{:?} {:?} two={} seqs={:?}",
            s.encoding, s.order, s.two_byte, s.seqs
        );
        let k =
            Kallsyms::from_vmcoreinfo(&b.mem, &b.vmci).unwrap_or_else(|e| panic!("{what}: {e}"));
        check_symbols(&k, &s, &what);
        let i = k.info();
        assert_eq!(i.found_by, FoundBy::Vmcoreinfo);
        assert_eq!(i.encoding, s.encoding, "{what}");
        assert_eq!(i.order, s.order, "{what}");
        assert_eq!(i.name_lengths, expected_lengths(&s), "{what}");
        assert_eq!(i.addresses, VirtAddr(b.addresses));
        assert_eq!(i.relative_base, b.relative_base.map(|_| STEXT));
    }
}

#[test]
fn scan_finds_the_same_tables_with_and_without_a_hint() {
    for s in variants() {
        let b = build(&s);
        for hint in [Some(STEXT), None] {
            let what = format!(
                "{:?} {:?} two={} seqs={:?} markers={} hint={hint:?}",
                s.encoding, s.order, s.two_byte, s.seqs, s.marker_size
            );
            // Scan from _text over 32 MiB: 16 MiB of holes before the tables.
            let k = Kallsyms::scan(&b.mem, VirtAddr(STEXT), 32 << 20, hint)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            check_symbols(&k, &s, &what);
            let i = k.info();
            assert_eq!(i.found_by, FoundBy::Scan);
            assert_eq!(i.encoding, s.encoding, "{what}");
            assert_eq!(i.order, s.order, "{what}");
            assert_eq!(i.names, VirtAddr(b.names), "{what}");
            assert_eq!(i.token_table, VirtAddr(b.token_table), "{what}");
            assert_eq!(i.token_index, VirtAddr(b.token_index), "{what}");
            assert_eq!(i.name_lengths, expected_lengths(&s), "{what}");
        }
    }
}

#[test]
fn how_says_what_was_chosen() {
    let s = spec(
        AddressEncoding::AbsolutePercpu,
        TableOrder::AddressesFirst,
        true,
    );
    let b = build(&s);
    let k = Kallsyms::from_vmcoreinfo(&b.mem, &b.vmci).unwrap();
    assert_eq!(
        k.how(),
        "from VMCOREINFO SYMBOL(kallsyms_*) (6.0+); addresses before names (<= 6.3 order); \
         base-relative with absolute per-cpu; 2-byte (ULEB128) name lengths"
    );
    assert_eq!(k.encoding(), AddressEncoding::AbsolutePercpu);
    let k = Kallsyms::scan(&b.mem, VirtAddr(REGION), 1 << 20, Some(STEXT)).unwrap();
    assert_eq!(
        k.how(),
        format!(
            "by signature scan of 0xffffffff82000000..+0x100000 (token table at {:#018x}); \
             addresses before names (<= 6.3 order); base-relative with absolute per-cpu; \
             2-byte (ULEB128) name lengths",
            b.token_table
        )
    );
}

#[test]
fn names_without_long_entries_are_either_form() {
    let mut s = spec(AddressEncoding::BaseRelative, TableOrder::NamesFirst, true);
    s.symbols.retain(|(_, n, _)| !n.starts_with("long_"));
    let b = build(&s);
    let k = Kallsyms::from_vmcoreinfo(&b.mem, &b.vmci).unwrap();
    assert_eq!(k.info().name_lengths, NameLengths::Either);
    assert!(k.how().ends_with("1-byte name lengths (no name needs 2)"));
}

#[test]
fn symbolize_lookup_and_format_addr() {
    let s = spec(
        AddressEncoding::AbsolutePercpu,
        TableOrder::NamesFirst,
        true,
    );
    let b = build(&s);
    let k = Kallsyms::from_vmcoreinfo(&b.mem, &b.vmci).unwrap();
    let panic_at = k.lookup("panic").unwrap().addr;
    assert_eq!(k.lookup("panic").unwrap().size, 0x2a0);
    assert_eq!(k.format_addr(panic_at + 0x10), "panic+0x10/0x2a0");
    assert_eq!(k.format_addr(panic_at), "panic+0x0/0x2a0");
    // Aliases: the first in table order, as the kernel prints.
    assert_eq!(k.format_addr(STEXT), "startup_64+0x0/0x100");
    assert_eq!(k.lookup("_stext").unwrap().addr, STEXT);
    let crash = k.lookup("sysrq_handle_crash").unwrap();
    assert_eq!((crash.kind, crash.size), ('t', 0x20));
    assert_eq!(
        k.format_addr(crash.addr + 0x1f),
        "sysrq_handle_crash+0x1f/0x20"
    );
    // Duplicates: the text symbol wins over data; the first text symbol in table order.
    let dup = k.lookup("dup_name").unwrap();
    assert_eq!(dup.kind, 't');
    assert_eq!(k.lookup("cleanup").unwrap().addr, STEXT + 0x180);
    assert_eq!(k.lookup("prb").unwrap().kind, 'd');
    assert!(k.lookup("no_such_symbol").is_none());
    assert!(k.lookup("").is_none());
    // _etext is followed by a 16 MiB gap: its size is capped.
    let etext = k.lookup("_etext").unwrap();
    assert_eq!(etext.size, MAX_SYMBOL_SIZE);
    assert_eq!(k.format_addr(etext.addr + 0xffff), "_etext+0xffff/0x10000");
    assert_eq!(
        k.format_addr(etext.addr + 0x10000),
        format!("{:#x}", etext.addr + 0x10000)
    );
    assert_eq!(etext.addr, STEXT + 0xa990);
    assert!(k.symbolize(etext.addr + 0x10000).is_none());
    // Below the table, and per-cpu offsets, are not symbols.
    assert_eq!(k.format_addr(STEXT - 1), "0xffffffff80ffffff");
    assert!(k.symbolize(0x1c).is_none());
    assert_eq!(k.lookup("cpu_number").unwrap().addr, 0x1c);
    // The last symbol has size 0: only its exact address.
    let end = k.lookup("_end").unwrap();
    assert_eq!(end.size, 0);
    assert_eq!(
        k.symbolize(end.addr).map(|(s, o)| (s.name.as_str(), o)),
        Some(("_end", 0))
    );
    assert!(k.symbolize(end.addr + 1).is_none());
    let (sym, off) = k.symbolize(b'x' as u64 + STEXT + 0x1000).unwrap();
    assert_eq!((sym.name.as_str(), off), ("fn_0001_sys_do_work1", 0x38));
}

/// The first lookups scan the table; later ones use the name index: both answer alike,
/// duplicates included.
#[test]
fn lookups_by_scan_and_by_index_agree() {
    let b = build(&spec(
        AddressEncoding::AbsolutePercpu,
        TableOrder::NamesFirst,
        true,
    ));
    let k = Kallsyms::from_vmcoreinfo(&b.mem, &b.vmci).unwrap();
    let mut names: Vec<&str> = k.symbols().iter().map(|s| s.name.as_str()).collect();
    names.extend(["no_such_symbol", "", "dup_name", "cleanup"]);
    let first: Vec<Option<(u64, char)>> = names
        .iter()
        .map(|n| k.lookup(n).map(|s| (s.addr, s.kind)))
        .collect();
    assert!(names.len() > 2 * NAME_INDEX_AFTER as usize);
    let again: Vec<Option<(u64, char)>> = names
        .iter()
        .map(|n| k.lookup(n).map(|s| (s.addr, s.kind)))
        .collect();
    assert_eq!(first, again);
    // A fresh table answers a late name by scan exactly as the index did.
    let fresh = Kallsyms::from_vmcoreinfo(&b.mem, &b.vmci).unwrap();
    for (n, want) in names
        .iter()
        .zip(&again)
        .rev()
        .take(NAME_INDEX_AFTER as usize)
    {
        assert_eq!(fresh.lookup(n).map(|s| (s.addr, s.kind)), *want, "{n}");
    }
}

#[test]
fn kallsyms_serializes_info_and_symbols() {
    let b = build(&spec(
        AddressEncoding::BaseRelative,
        TableOrder::NamesFirst,
        false,
    ));
    let k = Kallsyms::from_vmcoreinfo(&b.mem, &b.vmci).unwrap();
    let s = format!("{:?}", k.info());
    assert!(s.contains("BaseRelative"));
    let sym = &k.symbols()[0];
    assert!(sym.is_text() && !sym.is_absolute());
}

fn vmci_without(b: &Built, key: &str) -> Vmcoreinfo {
    let text: String = b
        .vmci
        .text
        .lines()
        .filter(|l| !l.starts_with(&format!("SYMBOL({key})")))
        .map(|l| format!("{l}\n"))
        .collect();
    Vmcoreinfo::parse(&text)
}

fn vmci_with(b: &Built, key: &str, value: u64) -> Vmcoreinfo {
    let text = vmci_without(b, key).text + &format!("SYMBOL({key})={value:x}\n");
    Vmcoreinfo::parse(&text)
}

#[test]
fn missing_keys_are_named() {
    let b = build(&spec(
        AddressEncoding::BaseRelative,
        TableOrder::NamesFirst,
        true,
    ));
    for key in [
        "kallsyms_names",
        "kallsyms_num_syms",
        "kallsyms_token_table",
        "kallsyms_token_index",
        "kallsyms_offsets",
    ] {
        let e = Kallsyms::from_vmcoreinfo(&b.mem, &vmci_without(&b, key)).unwrap_err();
        assert_eq!(e, KallsymsError::MissingSymbol { name: key });
    }
    // Without the relative base only place-relative is left, and it does not fit.
    let e =
        Kallsyms::from_vmcoreinfo(&b.mem, &vmci_without(&b, "kallsyms_relative_base")).unwrap_err();
    assert!(matches!(e, KallsymsError::NoEncoding { .. }), "{e}");
}

#[test]
fn absurd_counts_are_errors() {
    let b = build(&spec(
        AddressEncoding::AbsolutePercpu,
        TableOrder::AddressesFirst,
        true,
    ));
    let at = b.off(b.num_syms);
    for n in [0u32, MAX_SYMS + 1, u32::MAX] {
        let mem = b.mem_with(|v| v[at..at + 4].copy_from_slice(&n.to_le_bytes()));
        let e = Kallsyms::from_vmcoreinfo(&mem, &b.vmci)
            .map(|k| k.len())
            .unwrap_err();
        assert_eq!(
            e,
            KallsymsError::NumSyms {
                found: u64::from(n),
                va: VirtAddr(b.num_syms),
                limit: u64::from(MAX_SYMS)
            }
        );
    }
    // A count one short ends the names before the markers.
    let n = u32::from_le_bytes(b.bytes[at..at + 4].try_into().unwrap());
    let mem = b.mem_with(|v| v[at..at + 4].copy_from_slice(&(n - 1).to_le_bytes()));
    let e = Kallsyms::from_vmcoreinfo(&mem, &b.vmci)
        .map(|k| k.len())
        .unwrap_err();
    assert!(
        matches!(e, KallsymsError::NamesEnd { num_syms, .. } if num_syms == n - 1),
        "{e}"
    );
    // A count too large runs into the markers and the token table: garbage names.
    let mem = b.mem_with(|v| v[at..at + 4].copy_from_slice(&(n + 1000).to_le_bytes()));
    assert!(Kallsyms::from_vmcoreinfo(&mem, &b.vmci).is_err());
}

#[test]
fn truncated_tables_are_errors() {
    let b = build(&spec(
        AddressEncoding::BaseRelative,
        TableOrder::NamesFirst,
        true,
    ));
    // Memory ends in the middle of the names: the token index is gone first.
    let cut = b.off(b.names) + 1000;
    let mem = SliceKernelMem::new(vec![(VirtAddr(REGION), b.bytes[..cut].to_vec())]);
    let e = Kallsyms::from_vmcoreinfo(&mem, &b.vmci)
        .map(|k| k.len())
        .unwrap_err();
    assert!(
        matches!(
            e,
            KallsymsError::Read {
                what: "kallsyms_token_index",
                ..
            }
        ),
        "{e}"
    );
    // A hole in the middle of the names.
    let mem = SliceKernelMem::new(vec![
        (VirtAddr(REGION), b.bytes[..cut].to_vec()),
        (
            VirtAddr(REGION + cut as u64 + 8),
            b.bytes[cut + 8..].to_vec(),
        ),
    ]);
    let e = Kallsyms::from_vmcoreinfo(&mem, &b.vmci)
        .map(|k| k.len())
        .unwrap_err();
    assert!(
        matches!(e, KallsymsError::NamesTruncated { end, .. } if end == VirtAddr(REGION + cut as u64)),
        "{e}"
    );
    // A hole over the offsets.
    let lo = b.off(b.addresses) + 64;
    let mem = SliceKernelMem::new(vec![
        (VirtAddr(REGION), b.bytes[..lo].to_vec()),
        (
            VirtAddr(REGION + lo as u64 + 4096),
            b.bytes[lo + 4096..].to_vec(),
        ),
    ]);
    let e = Kallsyms::from_vmcoreinfo(&mem, &b.vmci)
        .map(|k| k.len())
        .unwrap_err();
    match e {
        KallsymsError::NoEncoding { tried } => assert!(tried
            .iter()
            .all(|r| matches!(r.reason, RejectReason::Unreadable { .. }))),
        e => panic!("{e}"),
    }
    // Nothing mapped at all.
    let e = Kallsyms::from_vmcoreinfo(&SliceKernelMem::default(), &b.vmci)
        .map(|k| k.len())
        .unwrap_err();
    assert!(
        matches!(
            e,
            KallsymsError::Read {
                what: "kallsyms_num_syms",
                ..
            }
        ),
        "{e}"
    );
    let e = Kallsyms::scan(&SliceKernelMem::default(), VirtAddr(STEXT), 1 << 24, None)
        .map(|k| k.len())
        .unwrap_err();
    assert_eq!(
        e,
        KallsymsError::NotFound {
            start: VirtAddr(STEXT),
            len: 1 << 24
        }
    );
}

#[test]
fn a_lying_token_index_is_an_error() {
    let b = build(&spec(
        AddressEncoding::BaseRelative,
        TableOrder::NamesFirst,
        true,
    ));
    let digits = b.off(b.token_index) + 2 * 0x30;
    let digits = u64::from(u16::from_le_bytes([b.bytes[digits], b.bytes[digits + 1]]));
    let at = b.off(b.token_index) + 2 * 0x61;
    let mem = b.mem_with(|v| v[at] = v[at].wrapping_add(1));
    let e = Kallsyms::from_vmcoreinfo(&mem, &b.vmci)
        .map(|k| k.len())
        .unwrap_err();
    assert!(
        matches!(e, KallsymsError::TokenIndex { index: 0x61, va, .. } if va == VirtAddr(b.token_index + 0xc2)),
        "{e}"
    );
    // The scan, finding no index that matches the tokens, reports it.
    let e = Kallsyms::scan(&mem, VirtAddr(REGION), 1 << 20, None)
        .map(|k| k.len())
        .unwrap_err();
    match e {
        KallsymsError::ScanFailed {
            candidates: 1,
            last,
            ..
        } => assert_eq!(
            *last,
            KallsymsError::ScanIncomplete {
                token_table: VirtAddr(b.token_table + digits),
                step: ScanStep::TokenIndex
            }
        ),
        e => panic!("{e}"),
    }
}

#[test]
fn a_wrong_stext_rejects_every_encoding() {
    let b = build(&spec(
        AddressEncoding::AbsolutePercpu,
        TableOrder::AddressesFirst,
        true,
    ));
    let v = vmci_with(&b, "_stext", STEXT + 0x20_0000);
    let e = Kallsyms::from_vmcoreinfo(&b.mem, &v)
        .map(|k| k.len())
        .unwrap_err();
    let KallsymsError::NoEncoding { tried } = &e else {
        panic!("{e}")
    };
    assert_eq!(tried.len(), 3);
    assert!(tried
        .iter()
        .any(|r| r.encoding == AddressEncoding::AbsolutePercpu
            && r.reason
                == RejectReason::Anchor {
                    found: Some(STEXT),
                    expected: STEXT + 0x20_0000
                }));
    assert!(e
        .to_string()
        .starts_with("no address encoding fits the kallsyms tables: "));
    // The scan with a wrong hint fails the same way.
    assert!(Kallsyms::scan(&b.mem, VirtAddr(REGION), 1 << 20, Some(STEXT + 1)).is_err());
}

#[test]
fn corrupted_names_stop_with_the_symbol_named() {
    let b = build(&spec(
        AddressEncoding::BaseRelative,
        TableOrder::NamesFirst,
        true,
    ));
    // Entry 0 is "T" + "startup_64": make its first token '_'.
    let at = b.off(b.names) + 1;
    let mem = b.mem_with(|v| v[at] = b'_');
    let e = Kallsyms::from_vmcoreinfo(&mem, &b.vmci)
        .map(|k| k.len())
        .unwrap_err();
    assert!(
        matches!(
            e,
            KallsymsError::BadKind {
                index: 0,
                kind: b'_',
                ..
            }
        ),
        "{e}"
    );
    // A zero length.
    let at = b.off(b.names);
    let mem = b.mem_with(|v| v[at] = 0);
    let e = Kallsyms::from_vmcoreinfo(&mem, &b.vmci)
        .map(|k| k.len())
        .unwrap_err();
    assert!(
        matches!(e, KallsymsError::EmptyName { index: 0, .. }),
        "{e}"
    );
}

/// A small xorshift generator: deterministic "random" inputs without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_bytes_at_the_table_addresses_never_panic() {
    let b = build(&spec(
        AddressEncoding::AbsolutePercpu,
        TableOrder::AddressesFirst,
        true,
    ));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for case in 0..300 {
        let mut bytes = b.bytes.clone();
        match case % 3 {
            // Everything random.
            0 => {
                for x in bytes.iter_mut() {
                    *x = rng.next() as u8;
                }
            }
            // Sprinkle random bytes into the real tables.
            1 => {
                for _ in 0..1 + rng.next() % 64 {
                    let i = (rng.next() % bytes.len() as u64) as usize;
                    bytes[i] = rng.next() as u8;
                }
            }
            // Random counts and token index entries.
            _ => {
                let at = b.off(b.num_syms);
                bytes[at..at + 4]
                    .copy_from_slice(&(rng.next() as u32 % (MAX_SYMS + 10)).to_le_bytes());
                let ti = b.off(b.token_index) + 2 * (rng.next() % 256) as usize;
                bytes[ti..ti + 2].copy_from_slice(&(rng.next() as u16).to_le_bytes());
            }
        }
        let mem = SliceKernelMem::new(vec![(VirtAddr(REGION), bytes)]);
        let _ = Kallsyms::from_vmcoreinfo(&mem, &b.vmci);
        let _ = Kallsyms::scan(&mem, VirtAddr(REGION), 1 << 20, None);
        if let Ok(k) = Kallsyms::from_vmcoreinfo(&mem, &b.vmci) {
            for _ in 0..16 {
                let _ = k.format_addr(rng.next());
            }
        }
    }
    // Random filler with the digits signature planted in it.
    for seed in 0..50 {
        let mut bytes = filler(1 << 16, seed + 1);
        let at = 0x8000 + (seed as usize * 97) % 0x4000;
        bytes[at..at + 20].copy_from_slice(b"0\x001\x002\x003\x004\x005\x006\x007\x008\x009\x00");
        let mem = SliceKernelMem::new(vec![(VirtAddr(REGION), bytes)]);
        assert!(Kallsyms::scan(&mem, VirtAddr(REGION), 1 << 16, None).is_err());
    }
}

#[test]
fn tables_at_the_top_of_the_address_space() {
    let s = spec(AddressEncoding::BaseRelative, TableOrder::NamesFirst, true);
    let b = build(&s);
    let len = b.bytes.len() as u64;
    let top = (u64::MAX - len + 1) & !0xfff;
    let mut bytes = b.bytes.clone();
    bytes.resize((u64::MAX - top + 1) as usize, 0xaa);
    let mem = SliceKernelMem::new(vec![(VirtAddr(top), bytes)]);
    let shift = |v: u64| v - REGION + top;
    let mut v = b.vmci.clone();
    for key in [
        "kallsyms_names",
        "kallsyms_num_syms",
        "kallsyms_token_table",
        "kallsyms_token_index",
        "kallsyms_offsets",
        "kallsyms_relative_base",
    ] {
        let at = v.symbol(key).unwrap();
        v = Vmcoreinfo::parse(
            &(v.text
                .lines()
                .filter(|l| !l.starts_with(&format!("SYMBOL({key})")))
                .map(|l| format!("{l}\n"))
                .collect::<String>()
                + &format!("SYMBOL({key})={:x}\n", shift(at))),
        );
    }
    let k = Kallsyms::from_vmcoreinfo(&mem, &v).unwrap();
    check_symbols(&k, &s, "top");
    let k = Kallsyms::scan(&mem, VirtAddr(top - (1 << 20)), u64::MAX, Some(STEXT)).unwrap();
    check_symbols(&k, &s, "top scan");
    assert_eq!(k.info().names, VirtAddr(shift(b.names)));
    // Random bytes up there.
    let mut rng = Rng(42);
    for _ in 0..20 {
        let bytes: Vec<u8> = (0..0x4000).map(|_| rng.next() as u8).collect();
        let mem = SliceKernelMem::new(vec![(VirtAddr(u64::MAX - 0x3fff), bytes)]);
        let _ = Kallsyms::scan(&mem, VirtAddr(u64::MAX - 0x3fff), 0x4000, None);
        let _ = Kallsyms::from_vmcoreinfo(&mem, &v);
    }
}
