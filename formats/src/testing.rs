//! Builds small ELF cores shaped exactly like qemu's, for tests of this crate and others
//! (feature `testing`).

/// A vCPU to put in a synthetic dump.
#[derive(Clone, Debug, Default)]
pub struct TestVcpu {
    /// Instruction pointer (both notes).
    pub rip: u64,
    /// Stack pointer (both notes).
    pub rsp: u64,
    /// Control registers cr0..cr4 (QEMU note).
    pub cr: [u64; 5],
    /// CS descriptor flags (QEMU note).
    pub cs_flags: u32,
}

/// A synthetic qemu ELF core.
#[derive(Clone, Debug)]
pub struct ElfBuilder {
    /// RAM blocks: guest-physical start and bytes.
    pub ram: Vec<(u64, Vec<u8>)>,
    /// vCPUs.
    pub vcpus: Vec<TestVcpu>,
    /// The guest's VMCOREINFO note text.
    pub vmcoreinfo: Option<String>,
    /// qemu >= 7.2 layout (section headers first, `e_ehsize` 8) or the older one.
    pub new_layout: bool,
    /// `QEMUCPUState` size: 440 (qemu >= 3.0) or 432.
    pub qemu_note_size: usize,
}

impl Default for ElfBuilder {
    fn default() -> Self {
        Self {
            ram: vec![(0, vec![0x11; 0x2000]), (0x10_0000, vec![0x22; 0x3000])],
            vcpus: vec![TestVcpu {
                rip: 0xffff_ffff_8100_0000,
                rsp: 0xffff_c900_0001_3e80,
                cr: [0x8005_0033, 0, 0, 0x1c0_a000, 0x3606f0],
                cs_flags: 0x00a0_9b00,
            }],
            vmcoreinfo: Some("OSRELEASE=6.1.0-test\nPAGESIZE=4096\n".into()),
            new_layout: true,
            qemu_note_size: 440,
        }
    }
}

fn note(out: &mut Vec<u8>, name: &[u8], kind: u32, desc: &[u8]) {
    out.extend_from_slice(&(name.len() as u32 + 1).to_le_bytes());
    out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(name);
    out.push(0);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out.extend_from_slice(desc);
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

impl ElfBuilder {
    /// The notes segment.
    fn notes(&self) -> Vec<u8> {
        let mut n = Vec::new();
        for (i, v) in self.vcpus.iter().enumerate() {
            let mut pr = vec![0u8; 336];
            pr[32..36].copy_from_slice(&(i as u32 + 1).to_le_bytes());
            pr[112 + 128..112 + 136].copy_from_slice(&v.rip.to_le_bytes());
            pr[112 + 152..112 + 160].copy_from_slice(&v.rsp.to_le_bytes());
            note(&mut n, b"CORE", 1, &pr);
        }
        for v in &self.vcpus {
            let mut q = vec![0u8; self.qemu_note_size];
            q[0..4].copy_from_slice(&1u32.to_le_bytes());
            q[4..8].copy_from_slice(&(self.qemu_note_size as u32).to_le_bytes());
            q[8 + 6 * 8..8 + 7 * 8].copy_from_slice(&v.rsp.to_le_bytes());
            q[136..144].copy_from_slice(&v.rip.to_le_bytes());
            q[144..152].copy_from_slice(&2u64.to_le_bytes());
            q[152..156].copy_from_slice(&0x10u32.to_le_bytes());
            q[160..164].copy_from_slice(&v.cs_flags.to_le_bytes());
            for (k, c) in v.cr.iter().enumerate() {
                q[392 + 8 * k..400 + 8 * k].copy_from_slice(&c.to_le_bytes());
            }
            note(&mut n, b"QEMU", 0, &q);
        }
        if let Some(text) = &self.vmcoreinfo {
            note(&mut n, b"VMCOREINFO", 0, text.as_bytes());
        }
        n
    }

    /// The ELF bytes.
    pub fn build(&self) -> Vec<u8> {
        let notes = self.notes();
        let phnum = 1 + self.ram.len();
        let (shoff, shnum, phoff) = if self.new_layout {
            (64u64, 2u16, 64 + 2 * 64u64)
        } else {
            (0, 0, 64)
        };
        let note_off = phoff + 56 * phnum as u64;
        let mem_off = note_off + notes.len() as u64;
        let mut out = Vec::new();
        out.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
        out.extend_from_slice(&4u16.to_le_bytes()); // ET_CORE
        out.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes()); // e_entry
        out.extend_from_slice(&phoff.to_le_bytes());
        out.extend_from_slice(&shoff.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
        let ehsize: u16 = if self.new_layout { 8 } else { 64 }; // qemu >= 7.2 writes 8
        out.extend_from_slice(&ehsize.to_le_bytes());
        out.extend_from_slice(&56u16.to_le_bytes());
        out.extend_from_slice(&(phnum as u16).to_le_bytes());
        out.extend_from_slice(&64u16.to_le_bytes());
        out.extend_from_slice(&shnum.to_le_bytes());
        out.extend_from_slice(&(if self.new_layout { 1u16 } else { 0 }).to_le_bytes());
        let total_ram: u64 = self.ram.iter().map(|(_, d)| d.len() as u64).sum();
        if self.new_layout {
            out.extend_from_slice(&[0u8; 64]);
            let mut sh = [0u8; 64];
            sh[0..4].copy_from_slice(&1u32.to_le_bytes());
            sh[4..8].copy_from_slice(&3u32.to_le_bytes()); // SHT_STRTAB
            sh[24..32].copy_from_slice(&(mem_off + total_ram).to_le_bytes());
            sh[32..40].copy_from_slice(&11u64.to_le_bytes());
            out.extend_from_slice(&sh);
        }
        let phdr = |out: &mut Vec<u8>, kind: u32, off: u64, paddr: u64, size: u64| {
            out.extend_from_slice(&kind.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&off.to_le_bytes());
            out.extend_from_slice(&paddr.to_le_bytes()); // p_vaddr = p_paddr
            out.extend_from_slice(&paddr.to_le_bytes());
            out.extend_from_slice(&size.to_le_bytes());
            out.extend_from_slice(&size.to_le_bytes());
            out.extend_from_slice(&0u64.to_le_bytes());
        };
        phdr(&mut out, 4, note_off, 0, notes.len() as u64);
        let mut off = mem_off;
        for (paddr, data) in &self.ram {
            phdr(&mut out, 1, off, *paddr, data.len() as u64);
            off += data.len() as u64;
        }
        out.extend_from_slice(&notes);
        for (_, data) in &self.ram {
            out.extend_from_slice(data);
        }
        if self.new_layout {
            out.extend_from_slice(b"\0.shstrtab\0");
        }
        out
    }
}
