use super::*;
use crate::kmem::SliceKernelMem;
use crate::printk::testutil::{
    LocklessRing, Rec, COMMITTED, DATA, FINALIZED, PRB_SYM, RB, RESERVED, REUSABLE,
};

fn texts(log: &KernelLog) -> Vec<&str> {
    log.records.iter().map(|r| r.text.as_str()).collect()
}

fn recs(texts: &[&str]) -> Vec<Rec> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| Rec::new(t, i as u64 * 1_000_000))
        .collect()
}

#[test]
fn several_records_decode_with_every_field() {
    let mut first = Rec::new("Linux version 6.1.0-56-amd64", 0);
    first.level = 5;
    first.caller_id = 0;
    let mut dev = Rec::new("pci 0000:00:01.0: BAR 0", 123_456_789);
    dev.subsystem = "pci".into();
    dev.device = "+pci:0000:00:01.0".into();
    dev.caller_id = 0x8000_0001;
    let mut user = Rec::new("from userspace", 2_000_000_000);
    user.facility = 1;
    user.level = 4;
    user.flags = 8;
    let multi = Rec::new("Call Trace:\n <TASK>", 3_000_000_000);
    let b = LocklessRing::new(4, vec![first, dev, user, multi]).build();
    let log = b.read().unwrap();
    assert_eq!(log.kind, LogKind::Lockless);
    assert!(log.diagnostics.is_empty(), "{:?}", log.diagnostics);
    assert_eq!(
        texts(&log),
        vec![
            "Linux version 6.1.0-56-amd64",
            "pci 0000:00:01.0: BAR 0",
            "from userspace",
            "Call Trace:\n <TASK>"
        ]
    );
    let r = &log.records;
    assert_eq!(
        r.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![100, 101, 102, 103]
    );
    assert_eq!((r[0].level, r[0].flags, r[0].caller_id), (5, 2, Some(0)));
    assert_eq!(r[1].ts_nsec, 123_456_789);
    assert_eq!(r[1].caller_id, Some(0x8000_0001));
    assert_eq!(r[1].subsystem.as_deref(), Some("pci"));
    assert_eq!(r[1].device.as_deref(), Some("+pci:0000:00:01.0"));
    assert_eq!(
        (r[0].subsystem.as_deref(), r[0].device.as_deref()),
        (None, None)
    );
    assert_eq!((r[2].facility, r[2].level, r[2].flags), (1, 4, 8));
    assert!(
        log.located.starts_with(&format!(
            "SYMBOL(prb)={PRB_SYM:#x} -> printk_rb_static at {RB:#018x}; text_data_ring at +48 (OFFSET("
        )),
        "{}",
        log.located
    );
}

#[test]
fn records_are_sorted_by_seq() {
    let mut b = LocklessRing::new(3, recs(&["a", "b", "c"])).build();
    let id0 = b.ids[0];
    b.set_seq(id0, 1000);
    let log = b.read().unwrap();
    assert_eq!(texts(&log), vec!["b", "c", "a"]);
}

#[test]
fn wrapped_block_is_read_from_index_zero() {
    // 128-byte text ring; the first block starts 24 bytes before the end of lap 5 and
    // needs 32: the kernel writes its id at the end and the whole block at index 0.
    let mut ring = LocklessRing::new(2, recs(&["twenty bytes of text", "ten bytes!", "x"]));
    ring.first_lpos = (5 << 7) + 104;
    ring.first_id = 0x1234_5677;
    let b = ring.build();
    assert_eq!(b.lpos[0], ((5 << 7) + 104, (6 << 7) + 32));
    let log = b.read().unwrap();
    assert!(log.diagnostics.is_empty(), "{:?}", log.diagnostics);
    assert_eq!(texts(&log), vec!["twenty bytes of text", "ten bytes!", "x"]);
}

#[test]
fn exact_fit_block_is_regular() {
    // 2025 placement: a 32-byte block at index 96 of a 128-byte ring ends exactly at the
    // end; next has index 0 and the block is not wrapped (tools testing
    // `begin % size > next % size` would read it from index 8).
    let mut ring = LocklessRing::new(2, recs(&["twenty bytes of text", "after the exact fit"]));
    ring.first_lpos = (5 << 7) + 96;
    let b = ring.build();
    assert_eq!(b.lpos[0], ((5 << 7) + 96, 6 << 7));
    assert_eq!(b.lpos[1].0, 6 << 7);
    let log = b.read().unwrap();
    assert!(log.diagnostics.is_empty(), "{:?}", log.diagnostics);
    assert_eq!(
        texts(&log),
        vec!["twenty bytes of text", "after the exact fit"]
    );
}

#[test]
fn exact_fit_block_wrapped_by_an_older_kernel() {
    // Before 2025 the same block was wrapped: stored at 0, next = lap 6 + 32.
    let mut ring = LocklessRing::new(2, recs(&["twenty bytes of text", "next"]));
    ring.first_lpos = (5 << 7) + 96;
    ring.exact_fit = false;
    let b = ring.build();
    assert_eq!(b.lpos[0], ((5 << 7) + 96, (6 << 7) + 32));
    let log = b.read().unwrap();
    assert!(log.diagnostics.is_empty(), "{:?}", log.diagnostics);
    assert_eq!(texts(&log), vec!["twenty bytes of text", "next"]);
}

#[test]
fn unusable_descriptors_are_skipped_and_counted() {
    let mut b = LocklessRing::new(3, recs(&["r0", "r1", "r2", "r3", "r4", "r5"])).build();
    let ids = b.ids.clone();
    b.set_state(ids[1], REUSABLE);
    // A newer lap of the same slot: the id in state_var is not the one expected.
    b.set_state_var(ids[2], (FINALIZED << 62) | (ids[2] + 8));
    b.set_state(ids[3], COMMITTED);
    // The head was being written when the guest stopped.
    b.set_state(ids[5], RESERVED);
    let log = b.read().unwrap();
    assert_eq!(texts(&log), vec!["r0", "r3", "r4"]);
    let d = log.diagnostics.join("\n");
    assert_eq!(log.diagnostics.len(), 3, "{d}");
    assert!(
        d.contains(
            "1 descriptors reserved (being written when the guest stopped) skipped (id 0x5)"
        ),
        "{d}"
    );
    assert!(d.contains("1 descriptors reusable"), "{d}");
    assert!(
        d.contains("1 descriptors whose state_var id is not the expected id skipped (id 0x2)"),
        "{d}"
    );
}

#[test]
fn a_reusable_tail_is_normal() {
    // A ring that has never filled: tail_id is still the kernel's initial descriptor
    // (DESC0_ID, reusable). Nothing to report.
    let mut b = LocklessRing::new(3, recs(&["desc0", "a", "b"])).build();
    let id0 = b.ids[0];
    b.set_state(id0, REUSABLE);
    let log = b.read().unwrap();
    assert_eq!(texts(&log), vec!["a", "b"]);
    assert!(log.diagnostics.is_empty(), "{:?}", log.diagnostics);
}

#[test]
fn data_less_records() {
    let mut b = LocklessRing::new(3, recs(&["a", "", "c", "d"])).build();
    assert_eq!(b.lpos[1], (3, 3));
    let id = b.ids[2];
    b.set_lpos(id, 1, 1);
    let log = b.read().unwrap();
    assert_eq!(texts(&log), vec!["a", "", "d"]);
    assert_eq!(log.diagnostics.len(), 1);
    assert!(log.diagnostics[0].starts_with("1 records without data (FAILED_LPOS"));
}

#[test]
fn impossible_positions_and_overwritten_blocks_are_skipped() {
    let mut b = LocklessRing::new(3, recs(&["a", "b", "c", "d", "e"])).build();
    let ids = b.ids.clone();
    let (begin, _) = b.lpos[1];
    b.set_lpos(ids[1], begin, begin - 8); // next before begin
    let (begin, _) = b.lpos[2];
    b.set_lpos(ids[2], begin, begin + 4096); // longer than the ring
    b.set_lpos(ids[3], 0x10, 0x13); // one odd, one even
                                    // Overwrite the block id of "e".
    let (begin, _) = b.lpos[4];
    let at = (begin & 255) as usize;
    b.data[at..at + 8].copy_from_slice(&777u64.to_le_bytes());
    let log = b.read().unwrap();
    assert_eq!(texts(&log), vec!["a"]);
    let d = log.diagnostics.join("\n");
    assert!(
        d.contains("3 records with impossible text block positions skipped"),
        "{d}"
    );
    assert!(
        d.contains("1 records whose text block holds another id"),
        "{d}"
    );
}

#[test]
fn text_len_is_capped_to_the_block() {
    let mut b = LocklessRing::new(3, recs(&["short", "next"])).build();
    let id = b.ids[0];
    b.set_text_len(id, 60_000);
    let log = b.read().unwrap();
    // The block holds "short" plus 3 padding bytes.
    assert_eq!(log.records[0].text, "short\0\0\0");
    assert_eq!(log.records[1].text, "next");
    assert!(
        log.diagnostics[0].contains("text_len beyond their block"),
        "{:?}",
        log.diagnostics
    );
}

#[test]
fn lying_head_and_tail_ids_are_bounded() {
    let mut b = LocklessRing::new(3, recs(&["a", "b", "c"])).build();
    let head = *b.ids.last().unwrap();
    b.set_head_tail(head, head.wrapping_sub(1_000_000_000_000) & ID_MASK_T);
    let log = b.read().unwrap();
    assert_eq!(texts(&log), vec!["a", "b", "c"]);
    assert!(
        log.diagnostics[0].contains("more than the 8 descriptors"),
        "{:?}",
        log.diagnostics
    );

    // The largest possible distance; state bits set in both.
    b.set_head_tail(u64::MAX, 0xc000_0000_0000_0000);
    let log = b.read().unwrap();
    assert!(log.records.is_empty());
    assert!(log.diagnostics.iter().any(|d| d.contains("apart")));
}

const ID_MASK_T: u64 = (1 << 62) - 1;

#[test]
fn absurd_geometry_is_an_error() {
    let mut b = LocklessRing::new(3, recs(&["a"])).build();
    b.set_count_bits(40);
    assert_eq!(
        b.read(),
        Err(LogError::OutOfRange {
            what: "prb_desc_ring.count_bits",
            value: 40,
            min: 0,
            max: 22
        })
    );

    let mut b = LocklessRing::new(3, recs(&["a"])).build();
    b.set_size_bits(60);
    assert!(matches!(
        b.read(),
        Err(LogError::OutOfRange {
            what: "prb_data_ring.size_bits",
            value: 60,
            ..
        })
    ));

    // Without the OFFSET key, a wrong size_bits means no data ring is found.
    let mut ring = LocklessRing::new(3, recs(&["a"]));
    ring.export_keys = false;
    let mut b = ring.build();
    b.set_size_bits(60);
    assert_eq!(
        b.read(),
        Err(LogError::NoTextRing {
            ringbuffer: VirtAddr(RB),
            count_bits: 3
        })
    );
}

#[test]
fn huge_but_unmapped_arrays_fail_cleanly() {
    // count_bits 22 passes the cap; the arrays are not there.
    let mut b = LocklessRing::new(3, recs(&["a"])).build();
    b.set_count_bits(22);
    let err = b.read().unwrap_err();
    assert!(
        matches!(
            err,
            LogError::Read {
                what: "prb_desc_ring.descs",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn text_data_ring_is_found_at_40_and_48() {
    for (at, keys) in [(40, true), (40, false), (48, true), (48, false)] {
        let mut ring = LocklessRing::new(4, recs(&["one", "two"]));
        ring.text_ring_at = at;
        ring.export_keys = keys;
        let log = ring.build().read().unwrap();
        assert_eq!(texts(&log), vec!["one", "two"], "at {at} keys {keys}");
        assert!(
            log.located.contains(&format!("text_data_ring at +{at} (")),
            "{}",
            log.located
        );
        assert_eq!(log.located.contains("probed"), !keys);
        assert!(log.diagnostics.is_empty(), "{:?}", log.diagnostics);
    }
}

#[test]
fn size_bits_mismatch_with_the_key_is_a_diagnostic() {
    let mut b = LocklessRing::new(3, recs(&["a"])).build();
    b.set_size_bits(7);
    let log = b.read().unwrap();
    assert_eq!(texts(&log), vec!["a"]);
    assert!(log.diagnostics[0].contains("size_bits 7 != desc_ring.count_bits 3 + 5"));
}

#[test]
fn dynamic_ring_and_unreadable_prb() {
    let mut b = LocklessRing::new(3, recs(&["a"])).build();
    b.vmci = b.vmci.replace(
        &format!("printk_rb_static)={RB:x}"),
        "printk_rb_static)=ffffffff81000000",
    );
    let log = b.read().unwrap();
    assert!(log.located.contains("printk_rb_dynamic"), "{}", log.located);

    let mem = SliceKernelMem::new(vec![(VirtAddr(DATA), vec![0; 8])]);
    let err = read_kernel_log_for_test(&mem, &b.vmcoreinfo()).unwrap_err();
    assert!(matches!(
        err,
        LogError::Read {
            what: "prb (pointer to the printk_ringbuffer)",
            ..
        }
    ));
}

fn read_kernel_log_for_test(mem: &dyn KernelMem, v: &Vmcoreinfo) -> Result<KernelLog, LogError> {
    crate::printk::read_kernel_log(mem, v)
}

#[test]
fn inconsistent_vmcoreinfo_layout_falls_back_to_defaults() {
    let mut b = LocklessRing::new(3, recs(&["a"])).build();
    b.vmci = b
        .vmci
        .replace("SIZE(printk_info)=88", "SIZE(printk_info)=99999999999");
    let log = b.read().unwrap();
    assert_eq!(texts(&log), vec!["a"]);
    assert!(log.diagnostics[0].contains("using the x86_64 defaults"));
}
