//! Replays the checked-in fuzzing corpus (`fuzz/corpus/TARGET/*`) through the same entry
//! functions the fuzz targets call: plain tests, no instrumentation.

use std::path::Path;

#[test]
fn every_corpus_file_of_every_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let mut total = 0;
    for (name, entry) in coroner_fuzz_entries::TARGETS {
        let dir = root.join(name);
        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus of {name} at {}: {e}", dir.display()))
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(!files.is_empty(), "the corpus of {name} is empty");
        for f in files {
            let data = std::fs::read(&f).unwrap();
            entry(&data);
            total += 1;
        }
    }
    assert!(total > 0);
}

/// Writes the synthetic seeds (not run by default): `cargo test -p coroner-fuzz-entries
/// -- --ignored write_seeds`.
#[test]
#[ignore]
fn write_seeds() {
    use coroner_formats::testing::ElfBuilder;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let elf = ElfBuilder::default().build();
    let old = ElfBuilder {
        new_layout: false,
        qemu_note_size: 432,
        vmcoreinfo: None,
        ..ElfBuilder::default()
    }
    .build();
    for t in ["elf_core", "dump"] {
        std::fs::create_dir_all(root.join(t)).unwrap();
        std::fs::write(root.join(t).join("seed-synthetic.elf"), &elf).unwrap();
        std::fs::write(root.join(t).join("seed-synthetic-old-layout.elf"), &old).unwrap();
    }
    let vmci = "OSRELEASE=6.1.0-56-amd64\nPAGESIZE=4096\nSYMBOL(prb)=ffffffff960643e0\nSYMBOL(_stext)=ffffffff81000000\nOFFSET(printk_ringbuffer.text_data_ring)=48\nNUMBER(phys_base)=-2128609280\nKERNELOFFSET=1a000000\n";
    std::fs::create_dir_all(root.join("vmcoreinfo")).unwrap();
    std::fs::write(root.join("vmcoreinfo").join("seed-6.1"), vmci).unwrap();
}
