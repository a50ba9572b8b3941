use super::*;
use crate::printk::testutil::{SRec, StructuredRing};

fn texts(log: &KernelLog) -> Vec<&str> {
    log.records.iter().map(|r| r.text.as_str()).collect()
}

#[test]
fn records_with_dicts_and_callers() {
    let mut ring = StructuredRing::new(256, true);
    ring.push(&SRec::new("Linux version 5.4.0", 0));
    let mut dev = SRec::new(
        "virtio_blk virtio1: [vda] 131072 512-byte logical blocks",
        1_500_000,
    );
    dev.dict = b"SUBSYSTEM=virtio\0DEVICE=+virtio:virtio1".to_vec();
    dev.caller_id = 0x8000_0002;
    dev.level = 5;
    ring.push(&dev);
    let log = ring.read().unwrap();
    assert_eq!(log.kind, LogKind::Structured);
    assert!(log.diagnostics.is_empty(), "{:?}", log.diagnostics);
    assert_eq!(
        texts(&log),
        vec![
            "Linux version 5.4.0",
            "virtio_blk virtio1: [vda] 131072 512-byte logical blocks"
        ]
    );
    let r = &log.records[1];
    assert_eq!((r.seq, r.ts_nsec, r.level, r.flags), (1, 1_500_000, 5, 2));
    assert_eq!(r.caller_id, Some(0x8000_0002));
    assert_eq!(r.subsystem.as_deref(), Some("virtio"));
    assert_eq!(r.device.as_deref(), Some("+virtio:virtio1"));
    assert!(
        log.located
            .contains("20-byte record headers with caller_id"),
        "{}",
        log.located
    );
}

#[test]
fn without_caller_id_headers_are_16_bytes() {
    let mut ring = StructuredRing::new(128, false);
    ring.push(&SRec::new("a", 0));
    ring.push(&SRec::new("b", 1));
    let log = ring.read().unwrap();
    assert_eq!(texts(&log), vec!["a", "b"]);
    assert_eq!(log.records[0].caller_id, None);
}

#[test]
fn len_zero_wraps_to_index_zero() {
    // 96-byte buffer, 16-byte headers: records of 20 bytes (16 + 4 of text).
    let mut ring = StructuredRing::new(96, false);
    for t in ["aaaa", "bbbb", "cccc"] {
        ring.push(&SRec::new(t, 0));
    }
    // The oldest two were dropped to make room for what follows.
    ring.first = 40;
    // "dddd" fits at 60 (60 + 20 + 16 = 96); "eeee" doesn't and wraps to 0.
    assert_eq!(ring.push(&SRec::new("dddd", 0)), 60);
    assert_eq!(ring.push(&SRec::new("eeee", 0)), 0);
    let log = ring.read().unwrap();
    assert!(log.diagnostics.is_empty(), "{:?}", log.diagnostics);
    assert_eq!(texts(&log), vec!["cccc", "dddd", "eeee"]);
    assert_eq!(
        log.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
}

#[test]
fn a_cycle_stops_with_a_diagnostic() {
    let mut ring = StructuredRing::new(96, false);
    for t in ["aaaa", "bbbb", "cccc"] {
        ring.push(&SRec::new(t, 0));
    }
    // log_next_idx points where no record boundary is: the walk wraps at the end marker
    // (zeros at 60) and comes round to log_first_idx again.
    ring.first = 20;
    ring.next = 50;
    let log = ring.read().unwrap();
    assert_eq!(texts(&log), vec!["bbbb", "cccc", "aaaa"]);
    assert_eq!(log.diagnostics.len(), 1);
    assert!(
        log.diagnostics[0].contains("cycle"),
        "{:?}",
        log.diagnostics
    );
}

#[test]
fn returning_to_index_zero_is_a_cycle() {
    let mut ring = StructuredRing::new(96, false);
    ring.push(&SRec::new("aaaa", 0));
    // Zeros after the first record: len 0 at 20 wraps to 0 = log_first_idx again.
    ring.first = 0;
    ring.next = 50;
    let log = ring.read().unwrap();
    assert_eq!(texts(&log), vec!["aaaa"]);
    assert!(
        log.diagnostics[0].contains("came back to log_first_idx"),
        "{:?}",
        log.diagnostics
    );
}

#[test]
fn a_second_wrap_marker_is_a_cycle() {
    let mut ring = StructuredRing::new(96, false);
    ring.push(&SRec::new("aaaa", 0));
    // log_first_idx at 40 holds zeros: wrap to 0, read "aaaa", zeros at 20 again.
    ring.first = 40;
    ring.next = 50;
    let log = ring.read().unwrap();
    assert_eq!(texts(&log), vec!["aaaa"]);
    assert!(
        log.diagnostics[0].contains("second wrap marker"),
        "{:?}",
        log.diagnostics
    );
}

#[test]
fn inconsistent_lengths_stop_the_walk() {
    let mut ring = StructuredRing::new(128, false);
    ring.push(&SRec::new("good", 0));
    let at = ring.push(&SRec::new("bad", 0)) as usize;
    ring.push(&SRec::new("after", 0));
    // text_len larger than the record.
    ring.buf[at + 10..at + 12].copy_from_slice(&200u16.to_le_bytes());
    let log = ring.read().unwrap();
    assert_eq!(texts(&log), vec!["good"]);
    assert!(
        log.diagnostics[0].contains("inconsistent"),
        "{:?}",
        log.diagnostics
    );
}

#[test]
fn indices_out_of_the_buffer_are_errors() {
    let mut ring = StructuredRing::new(64, false);
    ring.push(&SRec::new("a", 0));
    ring.first = 64;
    assert!(matches!(
        ring.read(),
        Err(LogError::OutOfRange {
            what: "log_first_idx",
            value: 64,
            ..
        })
    ));
}

#[test]
fn continuation_fragments_join_the_previous_record() {
    let mut ring = StructuredRing::new(512, true);
    let mut start = SRec::new("CPU features:", 10);
    start.flags = 0; // no newline yet
    ring.push(&start);
    let mut cont = SRec::new(" sse", 11);
    cont.flags = LOG_CONT;
    cont.level = 4; // KERN_CONT fragments get the default level
    ring.push(&cont);
    let mut end = SRec::new(" avx", 12);
    end.flags = LOG_CONT | LOG_NEWLINE;
    ring.push(&end);
    // A fragment after a completed line starts a new record.
    let mut orphan = SRec::new("orphan", 13);
    orphan.flags = LOG_CONT | LOG_NEWLINE;
    ring.push(&orphan);
    // Another caller's fragment does not join.
    let mut open = SRec::new("open", 14);
    open.flags = 0;
    ring.push(&open);
    let mut other = SRec::new("other", 15);
    other.flags = LOG_CONT | LOG_NEWLINE;
    other.caller_id = 99;
    ring.push(&other);
    let log = ring.read().unwrap();
    assert_eq!(
        texts(&log),
        vec!["CPU features: sse avx", "orphan", "open", "other"]
    );
    let r = &log.records[0];
    assert_eq!(
        (r.seq, r.ts_nsec, r.level, r.flags),
        (0, 10, 6, LOG_NEWLINE)
    );
}

#[test]
fn pre_3_11_struct_log_names_are_used() {
    let mut ring = StructuredRing::new(128, false);
    ring.push(&SRec::new("old", 0));
    let text = ring.vmcoreinfo().text.replace("printk_log", "log");
    let log = read_kernel_log_t(&ring.mem(), &Vmcoreinfo::parse(&text)).unwrap();
    assert_eq!(texts(&log), vec!["old"]);
}

fn read_kernel_log_t(mem: &dyn KernelMem, v: &Vmcoreinfo) -> Result<KernelLog, LogError> {
    crate::printk::read_kernel_log(mem, v)
}

#[test]
fn dict_values() {
    assert_eq!(
        dict_value(b"SUBSYSTEM=pci\0DEVICE=+pci:0", "DEVICE").as_deref(),
        Some("+pci:0")
    );
    assert_eq!(dict_value(b"SUBSYSTEMX=pci", "SUBSYSTEM"), None);
    assert_eq!(dict_value(b"SUBSYSTEM=", "SUBSYSTEM"), None);
    assert_eq!(dict_value(b"", "DEVICE"), None);
}
