//! Builders of synthetic log rings laid out as linux.md §2 documents (tests only).

use crate::kmem::{SliceKernelMem, VirtAddr};
use crate::vmcoreinfo::Vmcoreinfo;

use super::{read_kernel_log, KernelLog, LogError};

/// `SYMBOL(prb)`: the pointer variable.
pub(crate) const PRB_SYM: u64 = 0xffff_ffff_8200_0000;
/// The `printk_ringbuffer` `prb` points at (`printk_rb_static`).
pub(crate) const RB: u64 = 0xffff_ffff_8200_1000;
/// `descs[]`.
pub(crate) const DESCS: u64 = 0xffff_ffff_8210_0000;
/// `infos[]`.
pub(crate) const INFOS: u64 = 0xffff_ffff_8240_0000;
/// The text data ring.
pub(crate) const DATA: u64 = 0xffff_ffff_8280_0000;
/// `DESC_ID_MASK`.
pub(crate) const ID_MASK: u64 = (1 << 62) - 1;
/// `desc_committed`.
pub(crate) const COMMITTED: u64 = 1;
/// `desc_finalized`.
pub(crate) const FINALIZED: u64 = 2;
/// `desc_reusable`.
pub(crate) const REUSABLE: u64 = 3;
/// `desc_reserved`.
pub(crate) const RESERVED: u64 = 0;

/// The VMCOREINFO printk keys of a 6.1 kernel (text_data_ring added by the builder).
const PRB_KEYS: &str = "SIZE(printk_ringbuffer)=88\nOFFSET(printk_ringbuffer.desc_ring)=0\n\
OFFSET(printk_ringbuffer.fail)=80\nSIZE(prb_desc_ring)=48\nOFFSET(prb_desc_ring.count_bits)=0\n\
OFFSET(prb_desc_ring.descs)=8\nOFFSET(prb_desc_ring.infos)=16\nOFFSET(prb_desc_ring.head_id)=24\n\
OFFSET(prb_desc_ring.tail_id)=32\nSIZE(prb_desc)=24\nOFFSET(prb_desc.state_var)=0\n\
OFFSET(prb_desc.text_blk_lpos)=8\nSIZE(prb_data_blk_lpos)=16\nOFFSET(prb_data_blk_lpos.begin)=0\n\
OFFSET(prb_data_blk_lpos.next)=8\nSIZE(printk_info)=88\nOFFSET(printk_info.seq)=0\n\
OFFSET(printk_info.ts_nsec)=8\nOFFSET(printk_info.text_len)=16\nOFFSET(printk_info.caller_id)=20\n\
OFFSET(printk_info.dev_info)=24\nSIZE(dev_printk_info)=64\nOFFSET(dev_printk_info.subsystem)=0\n\
LENGTH(printk_info_subsystem)=16\nOFFSET(dev_printk_info.device)=16\nLENGTH(printk_info_device)=48\n\
SIZE(prb_data_ring)=32\nOFFSET(prb_data_ring.size_bits)=0\nOFFSET(prb_data_ring.data)=8\n\
OFFSET(prb_data_ring.head_lpos)=16\nOFFSET(prb_data_ring.tail_lpos)=24\n";

fn put(buf: &mut [u8], off: u64, bytes: &[u8]) {
    let off = off as usize;
    buf[off..off + bytes.len()].copy_from_slice(bytes);
}

/// One record for [`LocklessRing`].
#[derive(Clone, Debug)]
pub(crate) struct Rec {
    pub text: Vec<u8>,
    pub ts_nsec: u64,
    pub level: u8,
    pub facility: u8,
    pub flags: u8,
    pub caller_id: u32,
    pub subsystem: String,
    pub device: String,
}

impl Rec {
    /// A level-6 record stamped `ts_nsec`, logged by task 1.
    pub(crate) fn new(text: &str, ts_nsec: u64) -> Rec {
        Rec {
            text: text.as_bytes().to_vec(),
            ts_nsec,
            level: 6,
            facility: 0,
            flags: 2,
            caller_id: 1,
            subsystem: String::new(),
            device: String::new(),
        }
    }
}

/// A lockless ring to build: records are written one after another from `first_id` and
/// `first_lpos`, all finalized, as the kernel's `data_alloc()` would place them.
#[derive(Clone, Debug)]
pub(crate) struct LocklessRing {
    pub count_bits: u32,
    pub size_bits: u32,
    /// Offset of `text_data_ring` in `printk_ringbuffer`: 40 (5.10–5.17) or 48.
    pub text_ring_at: u64,
    /// Put the 6.1 VMCOREINFO keys, `OFFSET(printk_ringbuffer.text_data_ring)` included.
    pub export_keys: bool,
    pub first_id: u64,
    pub first_lpos: u64,
    /// 2025 placement (`is_blk_wrapped`): a block may end exactly at the end of the array.
    pub exact_fit: bool,
    pub records: Vec<Rec>,
}

impl LocklessRing {
    pub(crate) fn new(count_bits: u32, records: Vec<Rec>) -> Self {
        Self {
            count_bits,
            size_bits: count_bits + 5,
            text_ring_at: 48,
            export_keys: true,
            first_id: 0,
            first_lpos: 0,
            exact_fit: true,
            records,
        }
    }

    pub(crate) fn build(&self) -> BuiltRing {
        let count = 1u64 << self.count_bits;
        let size = 1u64 << self.size_bits;
        let mut b = BuiltRing {
            header: vec![0u8; 96],
            descs: vec![0u8; (count * 24) as usize],
            infos: vec![0u8; (count * 88) as usize],
            data: vec![0u8; size as usize],
            vmci: String::new(),
            ids: Vec::new(),
            lpos: Vec::new(),
            count_bits: self.count_bits,
            text_ring_at: self.text_ring_at,
        };
        let index = |l: u64| l & (size - 1);
        let mut lpos = self.first_lpos;
        for (k, r) in self.records.iter().enumerate() {
            let id = self.first_id.wrapping_add(k as u64) & ID_MASK;
            let (begin, next) = if r.text.is_empty() {
                (3, 3)
            } else {
                let blk = 8 + (r.text.len() as u64).div_ceil(8) * 8;
                let begin = lpos;
                let mut next = begin + blk;
                let regular = if self.exact_fit {
                    begin >> self.size_bits == (next - 1) >> self.size_bits
                } else {
                    begin >> self.size_bits == next >> self.size_bits
                };
                put(&mut b.data, index(begin), &id.to_le_bytes());
                if regular {
                    put(&mut b.data, index(begin) + 8, &r.text);
                } else {
                    put(&mut b.data, 0, &id.to_le_bytes());
                    put(&mut b.data, 8, &r.text);
                    next = (next & !(size - 1)) + blk;
                }
                lpos = next;
                (begin, next)
            };
            let slot = id & (count - 1);
            let d = slot * 24;
            put(&mut b.descs, d, &((FINALIZED << 62) | id).to_le_bytes());
            put(&mut b.descs, d + 8, &begin.to_le_bytes());
            put(&mut b.descs, d + 16, &next.to_le_bytes());
            let i = slot * 88;
            put(&mut b.infos, i, &(100 + k as u64).to_le_bytes());
            put(&mut b.infos, i + 8, &r.ts_nsec.to_le_bytes());
            put(&mut b.infos, i + 16, &(r.text.len() as u16).to_le_bytes());
            put(
                &mut b.infos,
                i + 18,
                &[r.facility, (r.level << 5) | (r.flags & 0x1f)],
            );
            put(&mut b.infos, i + 20, &r.caller_id.to_le_bytes());
            put(&mut b.infos, i + 24, r.subsystem.as_bytes());
            put(&mut b.infos, i + 40, r.device.as_bytes());
            b.ids.push(id);
            b.lpos.push((begin, next));
        }
        let last = b.ids.last().copied().unwrap_or(self.first_id);
        put(&mut b.header, 0, &self.count_bits.to_le_bytes());
        put(&mut b.header, 8, &DESCS.to_le_bytes());
        put(&mut b.header, 16, &INFOS.to_le_bytes());
        put(&mut b.header, 24, &last.to_le_bytes());
        put(&mut b.header, 32, &self.first_id.to_le_bytes());
        if self.text_ring_at == 48 {
            // last_finalized_seq: a small number, not a data ring.
            put(
                &mut b.header,
                40,
                &(99 + self.records.len() as u64).to_le_bytes(),
            );
        }
        let t = self.text_ring_at;
        put(&mut b.header, t, &self.size_bits.to_le_bytes());
        put(&mut b.header, t + 8, &DATA.to_le_bytes());
        put(&mut b.header, t + 16, &lpos.to_le_bytes());
        put(&mut b.header, t + 24, &self.first_lpos.to_le_bytes());
        b.vmci = format!(
            "OSRELEASE=6.1.0-test\nPAGESIZE=4096\nSYMBOL(prb)={PRB_SYM:x}\nSYMBOL(printk_rb_static)={RB:x}\n"
        );
        if self.export_keys {
            b.vmci.push_str(PRB_KEYS);
            b.vmci
                .push_str(&format!("OFFSET(printk_ringbuffer.text_data_ring)={t}\n"));
        }
        b
    }
}

/// A built lockless ring, to corrupt before reading.
#[derive(Clone, Debug)]
pub(crate) struct BuiltRing {
    pub header: Vec<u8>,
    pub descs: Vec<u8>,
    pub infos: Vec<u8>,
    pub data: Vec<u8>,
    pub vmci: String,
    /// The id of each record, in order.
    pub ids: Vec<u64>,
    /// The `(begin, next)` of each record.
    pub lpos: Vec<(u64, u64)>,
    pub count_bits: u32,
    pub text_ring_at: u64,
}

impl BuiltRing {
    fn slot(&self, id: u64) -> u64 {
        id & ((1u64 << self.count_bits) - 1)
    }

    pub(crate) fn mem(&self) -> SliceKernelMem {
        SliceKernelMem::new(vec![
            (VirtAddr(PRB_SYM), RB.to_le_bytes().to_vec()),
            (VirtAddr(RB), self.header.clone()),
            (VirtAddr(DESCS), self.descs.clone()),
            (VirtAddr(INFOS), self.infos.clone()),
            (VirtAddr(DATA), self.data.clone()),
        ])
    }

    pub(crate) fn vmcoreinfo(&self) -> Vmcoreinfo {
        Vmcoreinfo::parse(&self.vmci)
    }

    pub(crate) fn read(&self) -> Result<KernelLog, LogError> {
        read_kernel_log(&self.mem(), &self.vmcoreinfo())
    }

    pub(crate) fn set_state_var(&mut self, id: u64, sv: u64) {
        let d = self.slot(id) * 24;
        put(&mut self.descs, d, &sv.to_le_bytes());
    }

    pub(crate) fn set_state(&mut self, id: u64, state: u64) {
        self.set_state_var(id, (state << 62) | (id & ID_MASK));
    }

    pub(crate) fn set_lpos(&mut self, id: u64, begin: u64, next: u64) {
        let d = self.slot(id) * 24;
        put(&mut self.descs, d + 8, &begin.to_le_bytes());
        put(&mut self.descs, d + 16, &next.to_le_bytes());
    }

    pub(crate) fn set_text_len(&mut self, id: u64, len: u16) {
        let i = self.slot(id) * 88;
        put(&mut self.infos, i + 16, &len.to_le_bytes());
    }

    pub(crate) fn set_seq(&mut self, id: u64, seq: u64) {
        let i = self.slot(id) * 88;
        put(&mut self.infos, i, &seq.to_le_bytes());
    }

    pub(crate) fn set_head_tail(&mut self, head: u64, tail: u64) {
        put(&mut self.header, 24, &head.to_le_bytes());
        put(&mut self.header, 32, &tail.to_le_bytes());
    }

    pub(crate) fn set_count_bits(&mut self, bits: u32) {
        put(&mut self.header, 0, &bits.to_le_bytes());
    }

    pub(crate) fn set_size_bits(&mut self, bits: u32) {
        let t = self.text_ring_at;
        put(&mut self.header, t, &bits.to_le_bytes());
    }
}

/// `SYMBOL(log_buf)` of the structured and plain rings.
pub(crate) const LOG_BUF_SYM: u64 = 0xffff_ffff_8300_0000;
/// `SYMBOL(log_buf_len)`.
const LOG_BUF_LEN_SYM: u64 = 0xffff_ffff_8300_0010;
/// `SYMBOL(log_first_idx)`.
const FIRST_IDX_SYM: u64 = 0xffff_ffff_8300_0020;
/// `SYMBOL(log_next_idx)` (and `log_end` for the plain ring).
const NEXT_IDX_SYM: u64 = 0xffff_ffff_8300_0030;
/// The text buffer `log_buf` points at.
const LOG_BUF: u64 = 0xffff_ffff_8310_0000;
/// `SYMBOL(log_buf)` of the plain ring.
pub(crate) const PLAIN_SYM: u64 = LOG_BUF_SYM;

/// One record for [`StructuredRing`].
#[derive(Clone, Debug)]
pub(crate) struct SRec {
    pub ts_nsec: u64,
    pub level: u8,
    pub facility: u8,
    pub flags: u8,
    pub caller_id: u32,
    pub text: Vec<u8>,
    pub dict: Vec<u8>,
}

impl SRec {
    /// A level-6 record with `LOG_NEWLINE`.
    pub(crate) fn new(text: &str, ts_nsec: u64) -> SRec {
        SRec {
            ts_nsec,
            level: 6,
            facility: 0,
            flags: 2,
            caller_id: 1,
            text: text.as_bytes().to_vec(),
            dict: Vec::new(),
        }
    }
}

/// A structured `log_buf` (3.5–5.9) written the way `log_store()` does.
#[derive(Clone, Debug)]
pub(crate) struct StructuredRing {
    pub buf: Vec<u8>,
    /// `CONFIG_PRINTK_CALLER`: 20-byte headers with `caller_id`.
    pub caller_ids: bool,
    pub first: u32,
    pub next: u32,
}

impl StructuredRing {
    pub(crate) fn new(len: usize, caller_ids: bool) -> Self {
        Self {
            buf: vec![0u8; len],
            caller_ids,
            first: 0,
            next: 0,
        }
    }

    fn header_size(&self) -> usize {
        if self.caller_ids {
            20
        } else {
            16
        }
    }

    /// Appends a record at `next`, wrapping (with a `len == 0` marker) as the kernel does.
    /// Returns where it went.
    /// Does nothing (and returns `u32::MAX`) if the record can never fit.
    pub(crate) fn push(&mut self, r: &SRec) -> u32 {
        let h = self.header_size();
        let size = (h + r.text.len() + r.dict.len()).div_ceil(4) * 4;
        let mut at = self.next as usize;
        if size + h > self.buf.len() || at > self.buf.len() {
            return u32::MAX;
        }
        if at + size + h > self.buf.len() {
            let end = (at + h).min(self.buf.len());
            self.buf[at..end].fill(0);
            at = 0;
        }
        let b = &mut self.buf;
        put(b, at as u64, &r.ts_nsec.to_le_bytes());
        put(b, at as u64 + 8, &(size as u16).to_le_bytes());
        put(b, at as u64 + 10, &(r.text.len() as u16).to_le_bytes());
        put(b, at as u64 + 12, &(r.dict.len() as u16).to_le_bytes());
        put(
            b,
            at as u64 + 14,
            &[r.facility, (r.level << 5) | (r.flags & 0x1f)],
        );
        if self.caller_ids {
            put(b, at as u64 + 16, &r.caller_id.to_le_bytes());
        }
        put(b, (at + h) as u64, &r.text);
        put(b, (at + h + r.text.len()) as u64, &r.dict);
        self.next = (at + size) as u32;
        at as u32
    }

    pub(crate) fn mem(&self) -> SliceKernelMem {
        SliceKernelMem::new(vec![
            (VirtAddr(LOG_BUF_SYM), LOG_BUF.to_le_bytes().to_vec()),
            (
                VirtAddr(LOG_BUF_LEN_SYM),
                (self.buf.len() as u32).to_le_bytes().to_vec(),
            ),
            (VirtAddr(FIRST_IDX_SYM), self.first.to_le_bytes().to_vec()),
            (VirtAddr(NEXT_IDX_SYM), self.next.to_le_bytes().to_vec()),
            (VirtAddr(LOG_BUF), self.buf.clone()),
        ])
    }

    pub(crate) fn vmcoreinfo(&self) -> Vmcoreinfo {
        let mut v = format!(
            "OSRELEASE=5.4.0-test\nPAGESIZE=4096\nSYMBOL(log_buf)={LOG_BUF_SYM:x}\n\
             SYMBOL(log_buf_len)={LOG_BUF_LEN_SYM:x}\nSYMBOL(log_first_idx)={FIRST_IDX_SYM:x}\n\
             SYMBOL(clear_idx)=ffffffff83000040\nSYMBOL(log_next_idx)={NEXT_IDX_SYM:x}\n\
             SIZE(printk_log)={}\nOFFSET(printk_log.ts_nsec)=0\nOFFSET(printk_log.len)=8\n\
             OFFSET(printk_log.text_len)=10\nOFFSET(printk_log.dict_len)=12\n",
            self.header_size()
        );
        if self.caller_ids {
            v.push_str("OFFSET(printk_log.caller_id)=16\n");
        }
        Vmcoreinfo::parse(&v)
    }

    pub(crate) fn read(&self) -> Result<KernelLog, LogError> {
        read_kernel_log(&self.mem(), &self.vmcoreinfo())
    }
}

/// A plain (< 3.5) `log_buf` of `len` bytes holding `ring` (padded or cut to `len`), with
/// `log_end` as given.
pub(crate) fn plain_ring(ring: &[u8], log_end: u32, len: u32) -> (SliceKernelMem, Vmcoreinfo) {
    let mut buf = ring.to_vec();
    buf.resize(len as usize, 0);
    let mem = SliceKernelMem::new(vec![
        (VirtAddr(LOG_BUF_SYM), LOG_BUF.to_le_bytes().to_vec()),
        (VirtAddr(LOG_BUF_LEN_SYM), len.to_le_bytes().to_vec()),
        (VirtAddr(NEXT_IDX_SYM), log_end.to_le_bytes().to_vec()),
        (VirtAddr(LOG_BUF), buf),
    ]);
    let vmci = Vmcoreinfo::parse(&format!(
        "OSRELEASE=2.6.32-test\nPAGESIZE=4096\nSYMBOL(log_buf)={LOG_BUF_SYM:x}\n\
         SYMBOL(log_end)={NEXT_IDX_SYM:x}\nSYMBOL(log_buf_len)={LOG_BUF_LEN_SYM:x}\n\
         SYMBOL(logged_chars)=ffffffff83000040\n"
    ));
    (mem, vmci)
}
