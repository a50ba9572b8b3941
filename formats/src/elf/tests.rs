//! Parser tests on qemu-shaped cores, and fuzz-shaped tests on damaged ones.

use proptest::prelude::*;

use super::*;
use crate::testing::{ElfBuilder, TestVcpu};

fn parse(bytes: &[u8]) -> Result<ElfCore> {
    ElfCore::parse(bytes)
}

#[test]
fn qemu_7_2_layout() {
    let core = parse(&ElfBuilder::default().build()).unwrap();
    assert_eq!(core.class, ElfClass::Elf64);
    assert_eq!(core.machine, Machine::X86_64);
    assert_eq!(core.layout, HeaderLayout::SectionsFirst);
    assert_eq!(core.loads.len(), 2);
    assert_eq!(core.loads[1].paddr, 0x10_0000);
    assert_eq!(core.memory_bytes(), 0x5000);
    assert_eq!(core.vcpus.len(), 1);
    let v = &core.vcpus[0];
    assert_eq!(v.prstatus.as_ref().unwrap().ip(), 0xffff_ffff_8100_0000);
    assert_eq!(v.qemu.as_ref().unwrap().cr[3], 0x1c0_a000);
    assert!(core.vmcoreinfo.as_deref().unwrap().starts_with("OSRELEASE=6.1.0-test"));
    assert!(core.warnings.is_empty());
}

#[test]
fn old_layout_and_432_byte_note() {
    let b = ElfBuilder {
        new_layout: false,
        qemu_note_size: 432,
        vmcoreinfo: None,
        vcpus: vec![TestVcpu::default(); 3],
        ..ElfBuilder::default()
    };
    let core = parse(&b.build()).unwrap();
    assert_eq!(core.layout, HeaderLayout::ProgramHeadersFirst);
    assert_eq!(core.vcpus.len(), 3);
    assert_eq!(core.vcpus[2].qemu.as_ref().unwrap().kernel_gs_base, None);
    assert!(core.vmcoreinfo.is_none());
}

#[test]
fn truncated_memory_is_named() {
    let bytes = ElfBuilder::default().build();
    let err = parse(&bytes[..bytes.len() - 0x100]).unwrap_err();
    assert!(
        matches!(err, Error::ProgramHeader { index: 2, ref reason } if reason.contains("truncated")),
        "{err}"
    );
}

#[test]
fn not_an_elf_or_not_a_core() {
    assert!(matches!(parse(b"hello world, not elf"), Err(Error::UnknownFormat { .. })));
    let mut b = ElfBuilder::default().build();
    b[16] = 2; // ET_EXEC
    assert!(matches!(parse(&b), Err(Error::ElfHeader { field: "e_type", .. })));
    let mut b = ElfBuilder::default().build();
    b[5] = 2; // big-endian
    assert!(matches!(parse(&b), Err(Error::ElfHeader { field: "EI_DATA", .. })));
}

#[test]
fn absurd_program_header_count() {
    let mut b = ElfBuilder::default().build();
    b[56..58].copy_from_slice(&0xfffeu16.to_le_bytes());
    assert!(matches!(parse(&b), Err(Error::Truncated { .. })));
}

#[test]
fn a_bad_vcpu_note_is_a_warning_not_a_failure() {
    let mut b = ElfBuilder::default().build();
    let core = parse(&b).unwrap();
    let qemu = core.notes.iter().find(|n| n.name == "QEMU").unwrap();
    let size_at = (qemu.desc_offset + 4) as usize;
    b[size_at..size_at + 4].copy_from_slice(&9999u32.to_le_bytes());
    let core = parse(&b).unwrap();
    assert_eq!(core.warnings.len(), 1, "{:?}", core.warnings);
    assert!(core.vcpus[0].qemu.is_none());
    assert!(core.vcpus[0].prstatus.is_some());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn truncation_anywhere_never_panics(cut in 0usize..0x5400) {
        let bytes = ElfBuilder::default().build();
        let cut = cut.min(bytes.len());
        let _ = parse(&bytes[..cut]);
    }

    #[test]
    fn bit_flips_in_headers_and_notes_never_panic(
        flips in proptest::collection::vec((0usize..0x500, 0u8..8), 1..8)
    ) {
        let mut bytes = ElfBuilder::default().build();
        for (at, bit) in flips {
            bytes[at] ^= 1 << bit;
        }
        if let Ok(core) = parse(&bytes) {
            // Whatever parsed must describe bytes inside the file.
            for l in &core.loads {
                prop_assert!(l.offset + l.file_size <= bytes.len() as u64);
            }
        }
    }

    #[test]
    fn random_bytes_after_the_magic_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut bytes = b"\x7fELF\x02\x01\x01\0".to_vec();
        bytes.extend(tail);
        let _ = parse(&bytes);
    }
}
