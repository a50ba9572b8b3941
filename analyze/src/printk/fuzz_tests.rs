//! Random bytes as ring memory: every reader must return (records, diagnostics or an
//! error) quickly, without panicking or allocating beyond its caps.
//!
//! A small xorshift generator keeps this deterministic and dependency-free; each case
//! is reproducible from its seed.

use std::time::{Duration, Instant};

use crate::kmem::{SliceKernelMem, VirtAddr};
use crate::printk::testutil::{plain_ring, LocklessRing, Rec, SRec, StructuredRing, DATA};
use crate::printk::{format_dmesg, read_kernel_log, FormatOptions};
use crate::vmcoreinfo::Vmcoreinfo;

struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next() as u8;
        }
    }
}

/// A lockless ring whose descriptors, infos, text and (sometimes) header are random,
/// with some descriptors made to look valid so the deep paths run.
fn lockless_case(seed: u64) {
    let mut rng = XorShift::new(seed);
    let count_bits = rng.below(7) as u32;
    let mut ring = LocklessRing::new(count_bits, vec![Rec::new("seed", 0)]);
    ring.text_ring_at = if rng.below(2) == 0 { 40 } else { 48 };
    ring.export_keys = rng.below(2) == 0;
    let mut b = ring.build();
    rng.fill(&mut b.infos);
    rng.fill(&mut b.data);
    rng.fill(&mut b.descs);
    let count = 1u64 << count_bits;
    let size = 1u64 << (count_bits + 5);
    let id_base = rng.next() >> 3;
    for slot in 0..count {
        if rng.below(2) == 0 {
            let id = (id_base & !(count - 1)) | slot;
            b.set_state_var(id, (rng.below(4) << 62) | id);
            let begin = (rng.next() >> 8) & !7;
            let next = match rng.below(4) {
                0 => begin + 8 + rng.below(size),
                1 => rng.next(),
                2 => 3,
                _ => begin + size - rng.below(16),
            };
            b.set_lpos(id, begin, next);
        }
    }
    let head = id_base + rng.below(2 * count);
    let tail = if rng.below(4) == 0 {
        rng.next()
    } else {
        id_base
    };
    b.set_head_tail(head, tail);
    match rng.below(6) {
        0 => rng.fill(&mut b.header),
        1 => b.set_count_bits(rng.next() as u32),
        2 => b.set_size_bits(rng.below(64) as u32),
        _ => {}
    }
    if rng.below(4) == 0 {
        // Hostile VMCOREINFO layout values.
        for key in [
            "SIZE(printk_info)=88",
            "OFFSET(printk_info.caller_id)=20",
            "LENGTH(printk_info_device)=48",
        ] {
            if let Some((k, _)) = key.split_once('=') {
                b.vmci = b
                    .vmci
                    .replace(key, &format!("{k}={}", rng.next() >> rng.below(64)));
            }
        }
    }
    check(&b.mem(), &b.vmcoreinfo(), count);
}

/// A structured ring of random bytes with random indices.
fn structured_case(seed: u64) {
    let mut rng = XorShift::new(seed);
    let len = 16 + rng.below(600) as usize;
    let mut ring = StructuredRing::new(len, rng.below(2) == 0);
    if rng.below(2) == 0 {
        for i in 0..rng.below(20) {
            ring.push(&SRec::new("x", i));
        }
    }
    let n = rng.below(ring.buf.len() as u64 / 2) as usize;
    for _ in 0..n {
        let at = rng.below(ring.buf.len() as u64) as usize;
        ring.buf[at] = rng.next() as u8;
    }
    ring.first = rng.below(len as u64 + 2) as u32;
    ring.next = rng.below(len as u64 + 2) as u32;
    check(&ring.mem(), &ring.vmcoreinfo(), len as u64);
}

/// A plain ring of random bytes.
fn plain_case(seed: u64) {
    let mut rng = XorShift::new(seed);
    let len = rng.below(300) as u32;
    let mut buf = vec![0u8; len as usize];
    rng.fill(&mut buf);
    for b in buf.iter_mut() {
        if rng.below(8) == 0 {
            *b = b"\n<>[] .0123456789"[rng.below(17) as usize];
        }
    }
    let (mem, vmci) = plain_ring(&buf, rng.next() as u32, len);
    check(&mem, &vmci, u64::from(len) + 1);
}

fn check(mem: &SliceKernelMem, vmci: &Vmcoreinfo, max_records: u64) {
    if let Ok(log) = read_kernel_log(mem, vmci) {
        assert!(log.records.len() as u64 <= max_records);
        let _ = format_dmesg(
            &log.records,
            &FormatOptions {
                show_caller: true,
                show_level: true,
                ..FormatOptions::default()
            },
        );
    }
}

#[test]
fn random_memory_never_panics_or_hangs() {
    let start = Instant::now();
    for seed in 0..400 {
        lockless_case(seed);
        structured_case(seed);
        plain_case(seed);
    }
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn all_random_memory_is_an_error_or_diagnostics() {
    // Nothing planted at all: pointer, header and arrays are random.
    for seed in 0..200 {
        let mut rng = XorShift::new(seed);
        let mut blob = vec![0u8; 4096];
        rng.fill(&mut blob);
        let mem = SliceKernelMem::new(vec![(VirtAddr(DATA), blob)]);
        let vmci = Vmcoreinfo::parse(&format!(
            "SYMBOL(prb)={:x}\nSYMBOL(log_buf)={:x}\nSYMBOL(log_first_idx)={:x}\n",
            DATA + rng.below(4000),
            DATA + rng.below(4000),
            DATA + rng.below(4000)
        ));
        check(&mem, &vmci, 1 << 22);
    }
}
