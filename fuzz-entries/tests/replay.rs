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
    // kdump-compressed dumps of the same synthetic guest: plain with zlib pages,
    // flattened with lzo pages and zero pages left out.
    {
        use coroner_formats::kdump::{COMPRESSED_LZO, COMPRESSED_ZLIB};
        use coroner_formats::kdump_builder::KdumpBuilder;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vm.elf");
        std::fs::write(&path, &elf).unwrap();
        let core = coroner_formats::open(&path).unwrap();
        for (name, b) in [
            (
                "seed-synthetic-zlib.kdump",
                KdumpBuilder {
                    compression: COMPRESSED_ZLIB,
                    ..KdumpBuilder::default()
                },
            ),
            (
                "seed-synthetic-lzo-flattened.kdump",
                KdumpBuilder {
                    compression: COMPRESSED_LZO,
                    flattened: true,
                    exclude_zero_pages: true,
                    ..KdumpBuilder::default()
                },
            ),
        ] {
            std::fs::write(root.join("dump").join(name), b.build(&core).unwrap()).unwrap();
        }
    }
    let vmci = "OSRELEASE=6.1.0-56-amd64\nPAGESIZE=4096\nSYMBOL(prb)=ffffffff960643e0\nSYMBOL(_stext)=ffffffff81000000\nOFFSET(printk_ringbuffer.text_data_ring)=48\nNUMBER(phys_base)=-2128609280\nKERNELOFFSET=1a000000\n";
    std::fs::create_dir_all(root.join("vmcoreinfo")).unwrap();
    std::fs::write(root.join("vmcoreinfo").join("seed-6.1"), vmci).unwrap();
}

/// Kernel memory that remembers which bytes were read.
struct Recording<'a> {
    inner: &'a dyn coroner_analyze::KernelMem,
    reads: std::sync::Mutex<Vec<(u64, u64)>>,
}

impl coroner_analyze::KernelMem for Recording<'_> {
    fn read_virt(
        &self,
        va: coroner_analyze::VirtAddr,
        buf: &mut [u8],
    ) -> Result<(), coroner_analyze::XlateError> {
        if let Ok(mut reads) = self.reads.lock() {
            reads.push((va.0, buf.len() as u64));
        }
        self.inner.read_virt(va, buf)
    }
}

/// The pages `reads` touched, merged into runs, with their bytes (unreadable pages left out).
fn pages_read(
    mem: &dyn coroner_analyze::KernelMem,
    reads: &[(u64, u64)],
) -> Vec<(coroner_analyze::VirtAddr, Vec<u8>)> {
    let mut pages = std::collections::BTreeSet::new();
    for &(va, len) in reads {
        let mut p = va & !0xfff;
        while p < va.saturating_add(len) {
            pages.insert(p);
            p += 0x1000;
        }
    }
    let mut runs: Vec<(coroner_analyze::VirtAddr, Vec<u8>)> = Vec::new();
    for p in pages {
        let mut page = vec![0u8; 0x1000];
        if mem
            .read_virt(coroner_analyze::VirtAddr(p), &mut page)
            .is_err()
        {
            continue;
        }
        match runs.last_mut() {
            Some((start, bytes)) if start.0 + bytes.len() as u64 == p => bytes.extend(page),
            _ => runs.push((coroner_analyze::VirtAddr(p), page)),
        }
    }
    runs
}

/// Writes seeds for the kernel-memory, machine-check and TUI targets from the bundled
/// sample captures (not run by default): `cargo test -p coroner-fuzz-entries -- --ignored
/// write_sample_seeds`.
#[test]
#[ignore]
fn write_sample_seeds() {
    use coroner_analyze::{
        mce_from_memory, read_kernel_log, Hints, Kallsyms, KernelMem, KernelView, VirtAddr,
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/captures");
    for t in ["kernel_memory", "mce", "tui"] {
        std::fs::create_dir_all(root.join(t)).unwrap();
    }
    for name in ["panic", "mce-fatal"] {
        let path = samples.join(format!("{name}.core.zst"));
        let core = coroner_formats::open(&path).unwrap();
        let view =
            KernelView::build(core.mem(), &core.elf, &Hints::for_core(&core, false)).unwrap();
        let vmci = view.vmcoreinfo.clone().unwrap();
        let rec = Recording {
            inner: &view,
            reads: Default::default(),
        };
        // The log alone: small, and what most mutations should hit.
        let log = read_kernel_log(&rec, &vmci).unwrap();
        let reads = std::mem::take(&mut *rec.reads.lock().unwrap());
        let seed =
            coroner_fuzz_entries::kernel_memory::encode(&vmci.text, &pages_read(&view, &reads));
        std::fs::write(
            root.join("kernel_memory").join(format!("seed-{name}-log")),
            seed,
        )
        .unwrap();

        // kallsyms through VMCOREINFO, and the machine-check records it leads to.
        let ks = Kallsyms::from_vmcoreinfo(&rec, &vmci).unwrap();
        let found = mce_from_memory(&rec, &ks, core.elf.vcpus.len());
        let reads = std::mem::take(&mut *rec.reads.lock().unwrap());
        let pieces = pages_read(&view, &reads);
        let seed = coroner_fuzz_entries::kernel_memory::encode(&vmci.text, &pieces);
        std::fs::write(
            root.join("kernel_memory")
                .join(format!("seed-{name}-mce-records")),
            seed,
        )
        .unwrap();

        // Machine checks: the kernel log's lines, a qemu line, and the records' bytes.
        let mut text: String = log
            .records
            .iter()
            .map(|r| format!("{}\n", r.text))
            .collect();
        text.push('\0');
        text.push_str(
            "Guest MCE Memory Error at QEMU addr 0x7f3a2c400000 and GUEST addr 0x12345000 of type BUS_MCEERR_AR injected\n",
        );
        std::fs::write(root.join("mce").join(format!("seed-{name}-logs")), text).unwrap();
        // A fatal memory read error as Linux 6.x lays out `struct mce` (120 bytes).
        let mut r = vec![0u8; 120];
        r[0..8].copy_from_slice(&0xbd80_0000_0010_0134u64.to_le_bytes()); // status
        r[8..16].copy_from_slice(&0x86u64.to_le_bytes()); // misc
        r[16..24].copy_from_slice(&0x1234_5000u64.to_le_bytes()); // addr
        r[24..32].copy_from_slice(&5u64.to_le_bytes()); // mcgstatus: RIPV|MCIP
        r[48..56].copy_from_slice(&1_764_900_000u64.to_le_bytes()); // time
        r[60..64].copy_from_slice(&0x506e3u32.to_le_bytes()); // cpuid
        r[65] = 9; // bank
        r[80..88].copy_from_slice(&0x0100_0c0au64.to_le_bytes()); // mcgcap: SER, 10 banks
        std::fs::write(root.join("mce").join("seed-struct-mce-120"), &r).unwrap();
        if let Some((size, _)) = found.record_size {
            for (i, (_, place)) in found.records.iter().enumerate() {
                let mut b = vec![0u8; size];
                view.read_virt(VirtAddr(place.va), &mut b).unwrap();
                std::fs::write(root.join("mce").join(format!("seed-{name}-record-{i}")), b)
                    .unwrap();
            }
        }
    }
    for name in ["panic", "kvm-emulation-failure"] {
        std::fs::copy(
            samples.join(format!("{name}.core.zst")),
            root.join("tui").join(format!("seed-{name}.core.zst")),
        )
        .unwrap();
    }
}

/// Writes seeds for the QMP target (not run by default): what qemu 10 says in the
/// conversations `status` and `capture` hold, with events, errors and hostile text:
/// `cargo test -p coroner-fuzz-entries -- --ignored write_qmp_seeds`.
#[test]
#[ignore]
fn write_qmp_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/qmp");
    std::fs::create_dir_all(&dir).unwrap();
    let greeting = r#"{"QMP": {"version": {"qemu": {"micro": 2, "minor": 0, "major": 10}, "package": "Debian 1:10.0.2+ds-1~bpo12+1"}, "capabilities": ["oob"]}}"#;
    let panicked = r#"{"timestamp": {"seconds": 1764921600, "microseconds": 123456}, "event": "GUEST_PANICKED", "data": {"action": "pause", "info": {"core": 0, "psw-mask": 0, "type": "hyper-v"}}}"#;
    let stop = r#"{"timestamp": {"seconds": 1764921600, "microseconds": 123500}, "event": "STOP"}"#;
    let memory_failure = r#"{"timestamp": {"seconds": 1764921601, "microseconds": 5}, "event": "MEMORY_FAILURE", "data": {"action": "inject", "flags": {"action-required": true, "recursive": false}, "recipient": "guest"}}"#;
    let seeds: &[(&str, Vec<String>)] = &[
        (
            "status-panicked",
            vec![
                greeting.into(),
                r#"{"return": {}, "id": 1}"#.into(),
                panicked.into(),
                stop.into(),
                r#"{"return": {"status": "guest-panicked", "singlestep": false, "running": false}, "id": 2}"#.into(),
                r#"{"return": [{"thread-id": 1, "props": {"core-id": 0, "thread-id": 0, "node-id": 0, "socket-id": 0}, "qom-path": "/machine/unattached/device[0]", "cpu-index": 0, "target": "x86_64"}], "id": 3}"#.into(),
            ],
        ),
        (
            "capture-conversation",
            vec![
                greeting.into(),
                r#"{"return": {}, "id": 1}"#.into(),
                r#"{"return": {"status": "internal-error", "singlestep": false, "running": false}, "id": 2}"#.into(),
                memory_failure.into(),
                r#"{"return": "CPU#0\r\nRAX=0000000000000000 RBX=ffffffff82a0c940\r\nEFER=0000000000000d01\r\nCPU#1\r\nEFER=0000000000000d01\r\n", "id": 3}"#.into(),
                r#"{"return": {"status": "completed", "completed": 134217728, "total": 134217728}, "id": 4}"#.into(),
                r#"{"timestamp": {"seconds": 1764921602, "microseconds": 7}, "event": "DUMP_COMPLETED", "data": {"result": {"status": "completed", "completed": 134217728, "total": 134217728}}}"#.into(),
            ],
        ),
        (
            "errors",
            vec![
                greeting.into(),
                r#"{"return": {}, "id": 1}"#.into(),
                r#"{"error": {"class": "CommandNotFound", "desc": "The command query-status has not been found"}, "id": 2}"#.into(),
                r#"{"error": {"class": "GenericError", "desc": "\u001b]0;owned\u0007\u001b[2J dump in progress"}, "id": 3}"#.into(),
            ],
        ),
        (
            "not-qmp",
            vec![
                r#"{"QMP": {"version": {"qemu": {"micro": -1, "minor": "x", "major": 1e400}, "package": "\u0000\u001b[31m"}, "capabilities": null}}"#.into(),
                r#"{"return": [], "id": "1"}"#.into(),
                "\u{1b}[2J not json".into(),
            ],
        ),
        (
            "event-flood",
            std::iter::once(greeting.to_string())
                .chain(std::iter::once(r#"{"return": {}, "id": 1}"#.to_string()))
                .chain((0..200).map(|i| {
                    format!(r#"{{"timestamp": {{"seconds": {i}, "microseconds": 0}}, "event": "RTC_CHANGE{}", "data": {{"offset": {i}}}}}"#, i % 7)
                }))
                .chain(std::iter::once(
                    r#"{"return": {"status": "running", "singlestep": false, "running": true}, "id": 2}"#.to_string(),
                ))
                .collect(),
        ),
    ];
    for (name, lines) in seeds {
        let mut text = lines.join("\r\n");
        text.push_str("\r\n");
        std::fs::write(dir.join(format!("seed-{name}")), text).unwrap();
    }
}

/// The `locate_orc` seed holds a table the search finds (so the fuzzer starts from the
/// paths past the search, not only from its failures).
#[test]
fn the_locate_orc_seed_is_found() {
    use coroner_analyze::orc::{locate_vmlinux_orc, ImageBounds};
    use coroner_analyze::{SliceKernelMem, VirtAddr};
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/locate_orc/table-1200");
    let data = std::fs::read(f).unwrap();
    // The entry's bounds (fuzz-entries/src/unwind.rs).
    let stext = 0xffff_ffff_8100_0000u64;
    let at = stext + 0x2_0000;
    let mut image = data.clone();
    image.resize(data.len().div_ceil(4096) * 4096, 0);
    let mem = SliceKernelMem::new(vec![(VirtAddr(at), image)]);
    let bounds = ImageBounds {
        stext,
        etext: at,
        sinittext: at + data.len() as u64 + 0x1000,
    };
    let found = locate_vmlinux_orc(&mem, bounds).unwrap();
    assert_eq!((found.ip_table, found.n), (at + 0x100, 1200));
}

/// Writes the `kdump_stream` seeds (not run by default): `cargo test -p
/// coroner-fuzz-entries -- --ignored write_kdump_stream_seeds`. A small ELF core's kdump
/// file as qemu streams it, in each record order, zlib and lzo pages.
#[test]
#[ignore]
fn write_kdump_stream_seeds() {
    use coroner_formats::kdump::{COMPRESSED_LZO, COMPRESSED_ZLIB};
    use coroner_formats::kdump_builder::{qemu_like_stream, KdumpBuilder};
    use coroner_formats::testing::ElfBuilder;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/kdump_stream");
    std::fs::create_dir_all(&dir).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let elf = tmp.path().join("vm.elf");
    std::fs::write(&elf, ElfBuilder::default().build()).unwrap();
    let core = coroner_formats::open(&elf).unwrap();
    for (name, compression) in [("zlib", COMPRESSED_ZLIB), ("lzo", COMPRESSED_LZO)] {
        let plain = KdumpBuilder {
            compression,
            ..KdumpBuilder::default()
        }
        .build(&core)
        .unwrap();
        for order in [0, 2] {
            let stream = qemu_like_stream(&plain, order).unwrap();
            std::fs::write(dir.join(format!("{name}-order{order}")), stream).unwrap();
        }
    }
}

/// The `kdump_stream` seeds convert completely (so the fuzzer starts from the page
/// phase, not only from refusals of the header).
#[test]
fn the_kdump_stream_seeds_convert() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/kdump_stream");
    for name in ["zlib-order0", "zlib-order2", "lzo-order0", "lzo-order2"] {
        let data = std::fs::read(dir.join(name)).unwrap();
        assert!(coroner_fuzz_entries::convert_kdump_stream(&data), "{name}");
    }
}
