//! kdump-compressed dumps written to the documented layout from a synthetic ELF core, in
//! every compression and layout, and spoiled: each page must read back as the ELF's, a
//! left-out page as absent, and a damaged file as an error naming where.

use super::*;
use crate::kdump_builder::KdumpBuilder;
use crate::testing::ElfBuilder;
use crate::{MemError, PhysAddr, PhysMem};

/// An ELF core with varied pages, a zero page among them, and two RAM blocks.
fn elf(dir: &std::path::Path) -> std::path::PathBuf {
    let block = |seed: u8, pages: usize| -> Vec<u8> {
        (0..pages * 4096)
            .map(|i| {
                if i / 4096 == 1 {
                    0
                } else {
                    (i as u8).wrapping_mul(seed) ^ (i / 4096) as u8
                }
            })
            .collect()
    };
    let b = ElfBuilder {
        ram: vec![(0, block(3, 5)), (0x10_0000, block(7, 4))],
        ..ElfBuilder::default()
    };
    let path = dir.join("vm.elf");
    std::fs::write(&path, b.build()).unwrap();
    path
}

fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn pages_equal(a: &dyn PhysMem, b: &dyn PhysMem) {
    for r in a.ranges() {
        let mut x = vec![0u8; r.len() as usize];
        let mut y = vec![0u8; r.len() as usize];
        a.read_at(r.start, &mut x).unwrap();
        b.read_at(r.start, &mut y).unwrap();
        assert!(x == y, "range {r:?} differs");
    }
}

#[test]
fn every_compression_and_layout_reads_back_the_same_pages_and_notes() {
    let dir = tempfile::tempdir().unwrap();
    let source = crate::open(&elf(dir.path())).unwrap();
    let mut stored_len = usize::MAX;
    for compression in [
        0,
        COMPRESSED_ZLIB,
        COMPRESSED_LZO,
        COMPRESSED_SNAPPY,
        COMPRESSED_ZSTD,
    ] {
        for flattened in [false, true] {
            let b = KdumpBuilder {
                compression,
                flattened,
                ..KdumpBuilder::default()
            };
            let bytes = b.build(&source).unwrap();
            // Pages really went through the compressor: the file is smaller than stored.
            match compression {
                0 => stored_len = bytes.len(),
                _ => assert!(bytes.len() < stored_len, "{compression:#x}"),
            }
            let p = write(dir.path(), "k", &bytes);
            let k = crate::open(&p).unwrap();
            let what = format!("compression {compression:#x} flattened {flattened}");
            assert_eq!(
                k.format,
                if flattened {
                    crate::Format::KdumpFlattened
                } else {
                    crate::Format::Kdump
                },
                "{what}"
            );
            assert_eq!(k.mem().ranges(), source.mem().ranges(), "{what}");
            pages_equal(source.mem(), k.mem());
            // The zero page (the second of the first block) is known without reading.
            assert_eq!(
                k.mem().zero_run_end(PhysAddr(0x1000)),
                Some(PhysAddr(0x2000))
            );
            assert_eq!(k.mem().zero_run_end(PhysAddr(0x2000)), None);
            assert_eq!(k.elf.vcpus.len(), source.elf.vcpus.len(), "{what}");
            assert_eq!(k.elf.vmcoreinfo, source.elf.vmcoreinfo, "{what}");
            let info = k.kdump.as_ref().unwrap();
            assert!(!info.incomplete && info.excluded_pages == 0, "{what}");
            // The notes read back through the file, as slim copies them.
            let n = &k.elf.notes[0];
            let mut desc = vec![0u8; n.desc_len as usize];
            k.read_file(n.desc_offset, &mut desc).unwrap();
        }
    }
}

#[test]
fn pages_left_out_or_never_written_are_absent_not_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let source = crate::open(&elf(dir.path())).unwrap();
    let mut page = [0u8; 16];
    // Dump level 1 leaves out zero pages only: they read as zeros.
    let b = KdumpBuilder {
        exclude_zero_pages: true,
        ..KdumpBuilder::default()
    };
    let k = crate::open(&write(dir.path(), "k", &b.build(&source).unwrap())).unwrap();
    let info = k.kdump.as_ref().unwrap();
    assert_eq!((info.excluded_pages, info.excluded_are_zeros), (2, true));
    assert_eq!(k.mem().ranges(), source.mem().ranges());
    pages_equal(source.mem(), k.mem());
    // A higher level may have left out pages of any content: absent.
    let b = KdumpBuilder {
        exclude_zero_pages: true,
        dump_level: 31,
        ..KdumpBuilder::default()
    };
    let k = crate::open(&write(dir.path(), "k", &b.build(&source).unwrap())).unwrap();
    let info = k.kdump.as_ref().unwrap();
    assert_eq!((info.excluded_pages, info.excluded_are_zeros), (2, false));
    for zero in [0x1000, 0x10_1000] {
        assert!(matches!(
            k.mem().read_at(PhysAddr(zero), &mut page),
            Err(MemError::NotPresent { .. })
        ));
    }
    k.mem().read_at(PhysAddr(0x2000), &mut page).unwrap();

    let b = KdumpBuilder {
        incomplete_after: Some(3),
        ..KdumpBuilder::default()
    };
    let k = crate::open(&write(dir.path(), "k", &b.build(&source).unwrap())).unwrap();
    let info = k.kdump.as_ref().unwrap();
    assert!(info.incomplete);
    assert_eq!((info.pages, info.unwritten_pages), (3, 6));
    k.mem().read_at(PhysAddr(0x2000), &mut page).unwrap();
    assert!(matches!(
        k.mem().read_at(PhysAddr(0x3000), &mut page),
        Err(MemError::NotPresent { .. })
    ));
}

#[test]
fn damaged_files_are_errors_that_say_where() {
    let dir = tempfile::tempdir().unwrap();
    let source = crate::open(&elf(dir.path())).unwrap();
    let good = KdumpBuilder::default().build(&source).unwrap();
    let word = |at: usize| u32::from_le_bytes(good[at..at + 4].try_into().unwrap()) as usize;
    let desc_at = 4096 * (1 + word(432) + word(436));
    // Cut anywhere: an error at open, or pages that fail to read; never a panic.
    for cut in (0..good.len()).step_by(509) {
        let p = write(dir.path(), "cut", &good[..cut]);
        if let Ok(k) = crate::open(&p) {
            for r in k.mem().ranges() {
                let mut b = vec![0u8; r.len() as usize];
                let _ = k.mem().read_at(r.start, &mut b);
            }
        }
    }
    // A bitmap that announces pages the file holds no descriptors for.
    let dumpable = desc_at - 4096;
    let mut lies = good[..desc_at + 24 * 9].to_vec();
    lies[dumpable + 2..dumpable + 20].fill(0xff);
    let e = crate::open(&write(dir.path(), "lies", &lies))
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("descriptors run past the end"),
        "{e}"
    );
    // One that shifts every descriptor after it: those pages fail to read (their
    // descriptors are not descriptors), no panic.
    let mut shifted = good.clone();
    shifted[dumpable + 2] = 0xff;
    let k = crate::open(&write(dir.path(), "shifted", &shifted)).unwrap();
    let mut failed = 0;
    for r in k.mem().ranges() {
        let mut b = vec![0u8; 4096];
        let mut a = r.start.0;
        while a < r.end.0 {
            failed += usize::from(k.mem().read_at(PhysAddr(a), &mut b).is_err());
            a += 4096;
        }
    }
    assert!(failed > 0);
    // A descriptor that points past the end of the file, one too large, one that lies
    // about its compression.
    for (field, value) in [(0usize, 1u64 << 40), (8, 1 << 20), (12, 0x40)] {
        let mut bad = good.clone();
        let d = desc_at + 24 * 2;
        let bytes = value.to_le_bytes();
        let n = if field == 0 { 8 } else { 4 };
        bad[d + field..d + field + n].copy_from_slice(&bytes[..n]);
        let k = crate::open(&write(dir.path(), "bad", &bad)).unwrap();
        let mut b = [0u8; 8];
        let e = k.mem().read_at(PhysAddr(0x2000), &mut b).unwrap_err();
        assert!(matches!(e, MemError::Read { .. }), "{e}");
        // The others still read.
        k.mem().read_at(PhysAddr(0), &mut b).unwrap();
    }
    // One part of a split dump: refused, saying how to join the parts.
    let mut split = good.clone();
    split[4096 + 12..4096 + 16].copy_from_slice(&1i32.to_le_bytes());
    let e = crate::open(&write(dir.path(), "split", &split))
        .err()
        .unwrap();
    assert!(e.to_string().contains("--reassemble"), "{e}");
    // A flattened file whose records claim a huge file, and whose header claims bitmaps
    // to match: refused before anything that size is allocated.
    let mut head = good[..4096].to_vec();
    head[436..440].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    let mut flat = vec![0u8; 4096];
    flat[..12].copy_from_slice(b"makedumpfile");
    flat[16..24].copy_from_slice(&1i64.to_be_bytes());
    flat[24..32].copy_from_slice(&1i64.to_be_bytes());
    for (off, data) in [
        (0i64, &head[..]),
        (4096, &good[4096..8192]),
        (1 << 44, &b"x"[..]),
    ] {
        flat.extend_from_slice(&off.to_be_bytes());
        flat.extend_from_slice(&(data.len() as i64).to_be_bytes());
        flat.extend_from_slice(data);
    }
    flat.extend_from_slice(&(-1i64).to_be_bytes());
    flat.extend_from_slice(&(-1i64).to_be_bytes());
    let e = crate::open(&write(dir.path(), "huge", &flat))
        .err()
        .unwrap();
    assert!(e.to_string().contains("read at most"), "{e}");
    // Headers no kdump writer makes.
    for (at, value) in [(428usize, 8192i32), (432, 0), (432, -1)] {
        let mut bad = good.clone();
        bad[at..at + 4].copy_from_slice(&value.to_le_bytes());
        let e = crate::open(&write(dir.path(), "hdr", &bad)).err().unwrap();
        assert!(matches!(e, crate::Error::Kdump { .. }), "{e}");
    }
}

use crate::kdump_builder::qemu_like_stream;

fn content(path: &std::path::Path) -> Vec<u8> {
    let r = crate::ContainerReader::open(path).unwrap();
    let mut out = Vec::new();
    r.copy_to(&mut out, &crate::NoProgress, &Default::default())
        .unwrap();
    out
}

#[test]
fn a_qemu_like_stream_becomes_the_elf_compress_makes_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let source = crate::open(&elf(dir.path())).unwrap();
    for compression in [0, COMPRESSED_ZLIB, COMPRESSED_LZO] {
        let plain = KdumpBuilder {
            compression,
            ..KdumpBuilder::default()
        }
        .build(&source)
        .unwrap();
        let file = write(dir.path(), "vm.kdump", &plain);
        let want = dir.path().join("want.core.zst");
        crate::compress_dump(
            &file,
            &want,
            crate::WriteOptions::default(),
            crate::Metadata::new("t"),
            &crate::NoProgress,
            &Default::default(),
        )
        .unwrap();
        let want = content(&want);
        for order in [0, 1, 2] {
            let stream = qemu_like_stream(&plain, order).unwrap();
            for chunk in [7, 1000, 4099, 1 << 20] {
                let out = dir.path().join("got.core.zst");
                let w =
                    crate::ContainerWriter::create(&out, crate::WriteOptions::default()).unwrap();
                let mut s = KdumpStream::new(w);
                for c in stream.chunks(chunk) {
                    s.feed(c).unwrap();
                }
                let done = s.finish().map_err(|b| b.1).unwrap();
                assert_eq!(done.stream_bytes, stream.len() as u64);
                assert_eq!(
                    done.stream_blake3,
                    blake3::hash(&stream).to_hex().to_string()
                );
                assert_eq!(done.info.pages, 9);
                done.writer.finish(crate::Metadata::new("t")).unwrap();
                assert!(
                    content(&out) == want,
                    "compression {compression:#x}, order {order}, chunk {chunk}"
                );
            }
        }
    }
}

#[test]
fn a_broken_stream_is_an_error_naming_where() {
    let dir = tempfile::tempdir().unwrap();
    let source = crate::open(&elf(dir.path())).unwrap();
    let plain = KdumpBuilder::default().build(&source).unwrap();
    let stream = qemu_like_stream(&plain, 0).unwrap();
    let run = |bytes: &[u8]| -> Error {
        let out = dir.path().join("bad.core.zst");
        let w = crate::ContainerWriter::create(&out, crate::WriteOptions::default()).unwrap();
        let mut s = KdumpStream::new(w);
        match s.feed(bytes) {
            Err(e) => e,
            Ok(()) => match s.finish() {
                Err(b) => b.1,
                Ok(_) => panic!("a broken stream was accepted"),
            },
        }
    };
    // Cut anywhere: never complete.
    for cut in [10, 4096, 4100, stream.len() / 2, stream.len() - 16] {
        let e = run(&stream[..cut]);
        assert!(matches!(e, Error::Kdump { .. }), "cut {cut}: {e:?}");
    }
    // Not a flattened header.
    let mut bad = stream.clone();
    bad[0] = b'X';
    assert!(run(&bad).to_string().contains("not a flattened"));
    // A record that claims an absurd size.
    let mut bad = stream.clone();
    bad[4096 + 8..4096 + 16].copy_from_slice(&(1i64 << 40).to_be_bytes());
    assert!(matches!(run(&bad), Error::Kdump { .. }));
    // Bytes after the end marker.
    let mut bad = stream.clone();
    bad.push(0);
    assert!(run(&bad).to_string().contains("after the end marker"));
}

#[test]
fn a_stream_says_it_was_flattened() {
    let dir = tempfile::tempdir().unwrap();
    let source = crate::open(&elf(dir.path())).unwrap();
    let plain = KdumpBuilder::default().build(&source).unwrap();
    let w = crate::ContainerWriter::create(
        &dir.path().join("s.core.zst"),
        crate::WriteOptions::default(),
    )
    .unwrap();
    let mut s = KdumpStream::new(w);
    s.feed(&qemu_like_stream(&plain, 1).unwrap()).unwrap();
    let done = s.finish().map_err(|b| b.1).unwrap();
    let from = done.info.converted_from(crate::Format::KdumpFlattened);
    assert_eq!(from["layout"], "flattened");
    assert_eq!(from["compression"], "zlib");
}
