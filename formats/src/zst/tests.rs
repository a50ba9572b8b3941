//! Round trips through real files, the real `zstd` binary, and hostile-input tests of the
//! reader. Frame sizes are small (4 KiB) so every case stays fast.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;

use proptest::prelude::*;

use super::seek_table::{self, Entry};
use super::*;
use crate::error::Error;
use crate::progress::NoProgress;
use crate::source::ByteSource;

const FS: usize = 4096;

fn opts(frame_size: usize, threads: usize) -> WriteOptions {
    WriteOptions {
        frame_size,
        level: 3,
        threads,
    }
}

/// Deterministic incompressible bytes.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Compressible text.
fn text(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 100);
    let mut i = 0u64;
    while out.len() < len {
        out.extend_from_slice(
            format!(
                "[{i:8}] kernel: CPU{}: Machine Check: 0 Bank 5: be00000000800400\n",
                i % 7
            )
            .as_bytes(),
        );
        i += 1;
    }
    out.truncate(len);
    out
}

/// `zstd -d -c path`, or `None` (with the reason printed) when zstd is not installed.
fn zstd_d(path: &Path) -> Option<Vec<u8>> {
    let zstd = Path::new("/usr/bin/zstd");
    if !zstd.exists() {
        eprintln!("skipping the zstd -d check: /usr/bin/zstd is not installed");
        return None;
    }
    let out = Command::new(zstd)
        .args(["-d", "-q", "-c", "--"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "zstd -d failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(out.stdout)
}

fn write_chunks(path: &Path, chunks: &[&[u8]], o: WriteOptions) -> Finished {
    let mut w = ContainerWriter::create(path, o).unwrap();
    for c in chunks {
        w.write_all(c).unwrap();
    }
    let mut meta = Metadata::new("coroner test");
    meta.origin = Some("test".into());
    w.finish(meta).unwrap()
}

fn sha_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(data))
}

/// Checks every way of reading `path` against `data`.
fn check_file(path: &Path, data: &[u8], frame_size: usize) {
    for cache in [reader::DEFAULT_CACHE_BYTES, 0, frame_size + 1] {
        let r = ContainerReader::open_with_cache(path, cache).unwrap();
        assert_eq!(r.len(), data.len() as u64);
        assert_eq!(r.frame_count(), data.len().div_ceil(frame_size));
        assert_eq!(r.compressed_size(), std::fs::metadata(path).unwrap().len());
        let meta = r.metadata().unwrap();
        assert!(meta.complete);
        assert_eq!(meta.content_size, data.len() as u64);
        assert_eq!(meta.frame_size, frame_size as u64);
        assert_eq!(meta.content_sha256, "");
        assert_eq!(
            meta.content_frames_blake3,
            frames_blake3_of(data, frame_size)
        );

        let mut all = vec![0u8; data.len()];
        r.read_at(0, &mut all).unwrap();
        assert!(all == data, "whole read differs");
        // Reads at and across frame boundaries, twice (miss then hit).
        for _ in 0..2 {
            for start in [0, 1, frame_size - 1, frame_size, 2 * frame_size - 3] {
                for len in [0, 1, 5, frame_size, frame_size + 7, 3 * frame_size] {
                    if start + len <= data.len() {
                        let mut b = vec![0u8; len];
                        r.read_at(start as u64, &mut b).unwrap();
                        assert!(b == data[start..start + len], "read {start}+{len}");
                    }
                }
            }
        }
        let past = r.read_at(data.len() as u64, &mut [0u8; 1]);
        assert!(matches!(past, Err(Error::Truncated { .. })), "{past:?}");
        assert!(r.read_at(u64::MAX, &mut [0u8; 2]).is_err());

        let mut out = Vec::new();
        let sha = r
            .copy_to(&mut out, &NoProgress, &AtomicBool::new(false))
            .unwrap();
        assert!(out == data, "copy_to differs");
        assert_eq!(
            sha,
            ContentDigest::FramesBlake3(frames_blake3_of(data, frame_size))
        );
    }
    if let Some(out) = zstd_d(path) {
        assert!(out == data, "zstd -d output differs");
    }
}

fn round_trip(data: &[u8], chunk: usize, threads: usize) -> Finished {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vm.core.zst");
    let chunks: Vec<&[u8]> = data.chunks(chunk.max(1)).collect();
    let done = write_chunks(&path, &chunks, opts(FS, threads));
    assert_eq!(done.path, path);
    assert!(!dir.path().join("vm.core.zst.partial").exists());
    assert_eq!(done.content_size, data.len() as u64);
    assert_eq!(done.frames_blake3, frames_blake3_of(data, FS));
    assert_eq!(
        done.compressed_size,
        std::fs::metadata(&path).unwrap().len()
    );
    check_file(&path, data, FS);
    done
}

#[test]
fn round_trip_empty() {
    let done = round_trip(&[], 1, 1);
    assert_eq!(done.frames, 0);
}

#[test]
fn round_trip_one_byte() {
    assert_eq!(round_trip(&[0x7f], 1, 2).frames, 1);
}

#[test]
fn round_trip_exact_multiple_of_frame_size() {
    let data = noise(1, 4 * FS);
    assert_eq!(round_trip(&data, FS, 2).frames, 4);
    assert_eq!(round_trip(&data, 1000, 3).frames, 4);
}

#[test]
fn round_trip_frame_size_plus_one() {
    let mut data = text(FS);
    data.push(b'!');
    assert_eq!(round_trip(&data, 10_000, 1).frames, 2);
}

#[test]
fn zeros_take_the_fast_path_and_read_back() {
    let mut data = Vec::new();
    data.extend(noise(2, FS)); // frame 0: data
    data.extend(vec![0u8; 3 * FS]); // frames 1-3: zero
    data.extend(text(FS)); // frame 4: text
    data.extend(vec![0u8; FS]); // frame 5: zero
    let mut tail = vec![0u8; FS];
    tail[FS - 1] = 1;
    data.extend(tail); // frame 6: zero but for its last byte
    data.extend(vec![0u8; 100]); // frame 7: short, zero, compressed normally
    for chunk in [1, 777, FS, 5 * FS] {
        let done = round_trip(&data, chunk, 2);
        assert_eq!(done.frames, 8);
        assert_eq!(done.zero_frames, 4, "chunk {chunk}");
    }
}

#[test]
fn known_zero_frames_are_recognized_by_their_bytes_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("z.core.zst");
    let mut data = vec![0u8; 3 * FS];
    data.extend(noise(3, FS));
    write_chunks(&path, &[&data], opts(FS, 1));
    let r = ContainerReader::open_with_cache(&path, 0).unwrap();
    let mut buf = vec![1u8; 64];
    // The first zero frame is decompressed and learned; the next ones are matched.
    for frame in [0u64, 1, 2, 1] {
        r.read_at(frame * FS as u64 + 8, &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 0), "frame {frame}");
    }
    r.read_at(3 * FS as u64, &mut buf).unwrap();
    assert_eq!(buf, data[3 * FS..3 * FS + 64]);

    // A zero frame whose bytes were damaged is not taken for zeros: it fails to decode.
    let mut file = std::fs::read(&path).unwrap();
    // Frames 0..2 are the same bytes; frame 1 starts where the second zstd magic is.
    let one = (1..file.len())
        .find(|&i| file[i..].starts_with(&[0x28, 0xb5, 0x2f, 0xfd]))
        .unwrap();
    let second = 2 * one;
    file[second + 6] ^= 0x40;
    std::fs::write(&path, &file).unwrap();
    let r = ContainerReader::open_with_cache(&path, 0).unwrap();
    r.read_at(0, &mut buf).unwrap();
    assert!(
        r.read_at(2 * FS as u64, &mut buf).is_err(),
        "damaged zero frame read as zeros"
    );
}

#[test]
fn many_frames_many_threads_keep_their_order() {
    let mut data = Vec::new();
    for i in 0..200u64 {
        match i % 3 {
            0 => data.extend(noise(i, FS)),
            1 => data.extend(text(FS)),
            _ => data.extend(vec![0u8; FS]),
        }
    }
    data.extend(noise(999, 123));
    round_trip(&data, 3 * FS + 5, 4);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn random_chunked_writes(
        len in 0usize..6 * FS,
        chunks in proptest::collection::vec(1usize..2 * FS, 1..20),
        zero_at in 0usize..6,
        seed in any::<u64>(),
    ) {
        let mut data = noise(seed, len);
        let z = (zero_at * FS).min(data.len());
        let zend = (z + FS).min(data.len());
        data[z..zend].fill(0);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.core.zst");
        let mut w = ContainerWriter::create(&path, opts(FS, 2)).unwrap();
        let mut rest = &data[..];
        for c in chunks.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let n = (*c).min(rest.len());
            w.write_all(&rest[..n]).unwrap();
            prop_assert_eq!(w.bytes_in(), (data.len() - rest.len() + n) as u64);
            rest = &rest[n..];
        }
        w.finish(Metadata::new("t")).unwrap();
        check_file(&path, &data, FS);
    }
}

#[test]
fn io_copy_into_the_writer() {
    let data = text(10 * FS + 17);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.core.zst");
    let mut w = ContainerWriter::create(&path, opts(FS, 2)).unwrap();
    std::io::copy(&mut &data[..], &mut w).unwrap();
    w.flush().unwrap();
    w.finish(Metadata::new("t")).unwrap();
    check_file(&path, &data, FS);
}

#[test]
fn metadata_round_trip_keeps_caller_fields_and_unknown_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.core.zst");
    let mut w = ContainerWriter::create(&path, opts(FS, 1)).unwrap();
    w.write_all(b"hello").unwrap();
    let mut meta = Metadata::new("coroner 9.9.9");
    meta.origin = Some("compress /x.elf".into());
    meta.host = Some("hv1".into());
    meta.vmcoreinfo_offset = Some(3);
    meta.capture = Some(serde_json::json!({"run_state": "internal-error"}));
    meta.extra.insert(
        "from_the_future".into(),
        serde_json::json!([1, {"a": null}]),
    );
    // Fields the writer owns are overwritten.
    meta.complete = false;
    meta.content_size = 999;
    meta.format = "junk".into();
    let done = w.finish(meta.clone()).unwrap();

    let r = ContainerReader::open(&path).unwrap();
    let got = r.metadata().unwrap().clone();
    let mut expected = meta;
    expected.format = "coroner-core".into();
    expected.format_version = FORMAT_VERSION;
    expected.complete = true;
    expected.content_size = 5;
    expected.content_frames_blake3 = done.frames_blake3;
    expected.frame_size = FS as u64;
    assert_eq!(got, expected);
}

#[test]
fn abandon_keeping_the_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.core.zst");
    let data = noise(5, 2 * FS + 10);
    let mut w = ContainerWriter::create(&path, opts(FS, 2)).unwrap();
    w.write_all(&data).unwrap();
    assert!(w.partial_path().exists());
    let partial = dir.path().join("a.core.zst.partial");
    let kept = w
        .abandon(Metadata::new("t"), "interrupted by SIGINT", true)
        .unwrap();
    assert_eq!(kept.as_deref(), Some(partial.as_path()));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let m = std::fs::metadata(&partial).unwrap();
    assert_eq!(m.permissions().mode() & 0o777, 0o600);
    assert!(!path.exists());
    let r = ContainerReader::open(&partial).unwrap();
    let meta = r.metadata().unwrap();
    assert!(!meta.complete);
    assert_eq!(
        meta.incomplete_reason.as_deref(),
        Some("interrupted by SIGINT")
    );
    assert_eq!(meta.content_size, data.len() as u64);
    let mut out = Vec::new();
    let sha = r
        .copy_to(&mut out, &NoProgress, &AtomicBool::new(false))
        .unwrap();
    assert!(out == data);
    assert_eq!(sha.hex(), meta.content_frames_blake3);
    if let Some(out) = zstd_d(&partial) {
        assert!(out == data);
    }
}

#[test]
fn abandon_discarding_the_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.core.zst");
    let mut w = ContainerWriter::create(&path, opts(FS, 2)).unwrap();
    w.write_all(&noise(6, 5 * FS)).unwrap();
    assert!(w.partial_path().exists());
    assert_eq!(w.abandon(Metadata::new("t"), "no", false).unwrap(), None);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_stale_partial_neither_blocks_nor_is_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.core.zst");
    let partial = dir.path().join("p.core.zst.partial");
    std::fs::write(&partial, vec![1u8; 100_000]).unwrap();
    std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o644)).unwrap();
    let w = ContainerWriter::create(&path, opts(FS, 1)).unwrap();
    let m = std::fs::metadata(w.partial_path()).unwrap();
    assert_eq!(
        m.permissions().mode() & 0o777,
        0o600,
        "0600 from the first byte"
    );
    assert_eq!(std::fs::metadata(&partial).unwrap().len(), 100_000);
    w.finish(Metadata::new("t")).unwrap();
    let m = std::fs::metadata(&path).unwrap();
    assert_eq!(m.permissions().mode() & 0o777, 0o600);

    // A symlink planted at OUT.partial: the victim is neither written nor chmodded, also
    // when a failed write is kept (the kept file replaces the link).
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "v").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    let path = dir.path().join("c.core.zst");
    let link = dir.path().join("c.core.zst.partial");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let mut w = ContainerWriter::create(&path, opts(FS, 1)).unwrap();
    w.write_all(&noise(9, 3 * FS)).unwrap();
    w.finish(Metadata::new("t")).unwrap();
    let mut w = ContainerWriter::create(&path, opts(FS, 1)).unwrap();
    w.write_all(&noise(9, 3 * FS)).unwrap();
    w.abandon(Metadata::new("t"), "test", true).unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"v");
    let m = std::fs::metadata(&victim).unwrap();
    assert_eq!(m.permissions().mode() & 0o777, 0o644);
    assert!(!std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn a_missing_directory_is_a_clean_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/x.core.zst");
    match ContainerWriter::create(&path, opts(FS, 2)) {
        Err(Error::Io {
            what,
            path: p,
            source,
        }) => {
            assert_eq!(what, "create");
            assert_eq!(p.parent(), Some(dir.path().join("no/such/dir").as_path()));
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("created a file in a missing directory"),
    }
}

#[test]
fn bad_options_are_refused_before_creating_anything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.core.zst");
    let r = ContainerWriter::create(&path, opts(1000, 1));
    assert!(matches!(r, Err(Error::Container { .. })));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_dropped_writer_leaves_nothing_and_its_file_is_refused_while_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.core.zst");
    let mut w = ContainerWriter::create(&path, opts(FS, 3)).unwrap();
    w.write_all(&noise(7, 20 * FS + 3)).unwrap();
    let partial = w.partial_path().to_path_buf();
    let opened = ContainerReader::open(&partial);
    drop(w);
    assert!(!path.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    match opened {
        Err(Error::Container { reason }) => assert!(
            reason.contains("no seek table") && reason.contains("incomplete capture"),
            "{reason}"
        ),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened a file without a seek table"),
    }
}

/// A writer whose output is `/dev/full` (every write fails with ENOSPC), standing in for
/// a full disk; its "temporary file" is `full.tmp` next to `path`.
fn over_dev_full(path: &Path, o: WriteOptions) -> ContainerWriter {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let temp = path.with_file_name("full.tmp");
    let out = crate::output_file::OutputFile::over(file, temp, path.to_path_buf());
    ContainerWriter::into_destination(Box::new(out), o).unwrap()
}

/// A full disk: `/dev/full` fails every write with ENOSPC.
#[test]
fn enospc_is_reported_promptly_and_everything_stops() {
    let dev_full = Path::new("/dev/full");
    if !dev_full.exists() {
        eprintln!("skipping: /dev/full does not exist");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.core.zst");
    let mut w = over_dev_full(&path, opts(FS, 3));
    // More than the writer keeps in flight, so a write must reach the file.
    let data = noise(8, writer::IN_FLIGHT_BYTES + 64 * FS);
    let mut first_error = None;
    for chunk in data.chunks(FS) {
        if let Err(e) = w.write_all(chunk) {
            first_error = Some(e);
            break;
        }
    }
    match first_error {
        Some(Error::Io {
            what,
            path: p,
            source,
        }) => {
            assert_eq!(what, "write");
            assert_eq!(p, dir.path().join("full.tmp"));
            assert_eq!(source.raw_os_error(), Some(28), "ENOSPC");
        }
        other => panic!("expected a write error, got {other:?}"),
    }
    // Sticky: later calls fail too, and nothing hangs.
    assert!(w.write_all(&data[..FS]).is_err());
    let io_err = std::io::Write::write(&mut w, b"x").unwrap_err();
    assert!(io_err.to_string().contains("earlier error"), "{io_err}");
    assert!(w.finish(Metadata::new("t")).is_err());
    assert!(!path.exists());
}

#[test]
fn enospc_during_finish_is_an_error_too() {
    let dev_full = Path::new("/dev/full");
    if !dev_full.exists() {
        eprintln!("skipping: /dev/full does not exist");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.core.zst");
    let mut w = over_dev_full(&path, opts(FS, 2));
    w.write_all(b"tiny").unwrap();
    let e = w.finish(Metadata::new("t")).unwrap_err();
    assert!(matches!(e, Error::Io { what: "write", .. }), "{e:?}");
}

#[test]
fn copy_to_checks_the_recorded_sha256_and_honours_interrupts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.core.zst");
    let data = text(3 * FS);
    let done = write_chunks(&path, &[&data], opts(FS, 1));
    // Same length, other digit: the file stays well-formed.
    let mut bytes = std::fs::read(&path).unwrap();
    let at = find(&bytes, done.frames_blake3.as_bytes()).unwrap();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    let r = ContainerReader::from_source(Box::new(bytes), 1 << 20).unwrap();
    let e = r
        .copy_to(&mut Vec::new(), &NoProgress, &AtomicBool::new(false))
        .unwrap_err();
    match e {
        Error::Checksum {
            field,
            expected,
            found,
        } => {
            assert_eq!(field, "content_frames_blake3");
            assert_ne!(expected, found);
            assert_eq!(found, done.frames_blake3);
        }
        other => panic!("expected a checksum error, got {other:?}"),
    }
    let r = ContainerReader::open(&path).unwrap();
    let e = r
        .copy_to(&mut Vec::new(), &NoProgress, &AtomicBool::new(true))
        .unwrap_err();
    assert!(matches!(e, Error::Interrupted));
}

#[test]
fn reader_is_send_and_sync_and_writer_is_send() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<ContainerReader>();
    send::<ContainerWriter>();
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn concurrent_random_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.core.zst");
    let mut data = text(40 * FS);
    data[FS * 10..FS * 20].fill(0);
    write_chunks(&path, &[&data], opts(FS, 2));
    let r = ContainerReader::open_with_cache(&path, 5 * FS).unwrap();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (r, data) = (&r, &data);
            s.spawn(move || {
                let offsets = noise(t, 400);
                for pair in offsets.chunks(2) {
                    let off = (usize::from(pair[0]) << 8 | usize::from(pair[1])) * 2 % data.len();
                    let len = (data.len() - off).min(3000);
                    let mut b = vec![0u8; len];
                    r.read_at(off as u64, &mut b).unwrap();
                    assert!(b == data[off..off + len]);
                }
            });
        }
    });
}

/// A plain seekable zstd stream (no coroner frame), built by hand.
fn plain_seekable(frames: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut entries = Vec::new();
    for f in frames {
        let c = zstd::bulk::compress(f, 1).unwrap();
        entries.push(Entry {
            compressed: c.len() as u32,
            decompressed: f.len() as u32,
        });
        out.extend(c);
    }
    out.extend(seek_table::encode(&entries).unwrap());
    out
}

#[test]
fn plain_seekable_streams_without_metadata_are_accepted() {
    let a = text(5000);
    let b = noise(9, 300);
    let bytes = plain_seekable(&[&a, &b]);
    let r = ContainerReader::from_source(Box::new(bytes), 1 << 20).unwrap();
    assert!(r.metadata().is_none());
    assert_eq!(r.frame_count(), 2);
    let mut all = vec![0u8; 5300];
    r.read_at(0, &mut all).unwrap();
    assert!(all[..5000] == a[..] && all[5000..] == b[..]);
    let sha = r
        .copy_to(&mut Vec::new(), &NoProgress, &AtomicBool::new(false))
        .unwrap();
    // No recorded digest: the frame manifest's, over the frames as the seek table cuts
    // them.
    let b3 = |d: &[u8]| hex(blake3::hash(d).as_bytes());
    let manifest = format!("{}\n{}\n", b3(&a), b3(&b));
    assert_eq!(sha, ContentDigest::FramesBlake3(b3(manifest.as_bytes())));
}

#[test]
fn a_frame_that_decompresses_to_another_size_is_refused() {
    // The table says 5000 and 300, the frames hold 300 and 5000: same total.
    let a = text(5000);
    let b = noise(9, 300);
    let ca = zstd::bulk::compress(&a, 1).unwrap();
    let cb = zstd::bulk::compress(&b, 1).unwrap();
    let mut bytes = Vec::new();
    bytes.extend(&cb);
    bytes.extend(&ca);
    bytes.extend(
        seek_table::encode(&[
            Entry {
                compressed: cb.len() as u32,
                decompressed: 5000,
            },
            Entry {
                compressed: ca.len() as u32,
                decompressed: 300,
            },
        ])
        .unwrap(),
    );
    let r = ContainerReader::from_source(Box::new(bytes), 1 << 20).unwrap();
    let e = r.read_at(0, &mut [0u8; 1]).unwrap_err();
    assert!(matches!(e, Error::Frame { frame: 0, .. }), "{e:?}");

    // Two frames listed as one: the first frame is shorter than the entry.
    let mut bytes = Vec::new();
    bytes.extend(&ca);
    bytes.extend(&cb);
    bytes.extend(
        seek_table::encode(&[Entry {
            compressed: (ca.len() + cb.len()) as u32,
            decompressed: 5300,
        }])
        .unwrap(),
    );
    let r = ContainerReader::from_source(Box::new(bytes), 1 << 20).unwrap();
    let e = r.read_at(0, &mut [0u8; 1]).unwrap_err();
    assert!(matches!(e, Error::Frame { frame: 0, .. }), "{e:?}");
}

#[test]
fn garbage_between_data_and_table_is_refused() {
    let a = text(5000);
    let c = zstd::bulk::compress(&a, 1).unwrap();
    let mut bytes = c.clone();
    bytes.extend(b"0123456789abcdef0123");
    bytes.extend(
        seek_table::encode(&[Entry {
            compressed: c.len() as u32,
            decompressed: 5000,
        }])
        .unwrap(),
    );
    let e = ContainerReader::from_source(Box::new(bytes), 0)
        .err()
        .unwrap();
    assert!(matches!(e, Error::Metadata { .. }), "{e:?}");
}

/// A small container with data, zero and text frames, as bytes.
fn sample() -> (Vec<u8>, Vec<u8>) {
    let mut data = noise(11, FS + 100);
    data.extend(vec![0u8; FS]);
    data.extend(text(FS + 5));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.core.zst");
    write_chunks(&path, &[&data], opts(FS, 2));
    (std::fs::read(&path).unwrap(), data)
}

/// Opens `bytes`; if that works, every way of reading must fail or give exactly `data`.
fn never_wrong(bytes: Vec<u8>, data: &[u8]) -> Result<(), TestCaseError> {
    let Ok(r) = ContainerReader::from_source(Box::new(bytes), 2 * FS) else {
        return Ok(());
    };
    if r.len() != data.len() as u64 {
        // A lying table that the open did not catch: reading must fail.
        let copied = r.copy_to(&mut Vec::new(), &NoProgress, &AtomicBool::new(false));
        prop_assert!(copied.is_err());
        return Ok(());
    }
    let mut all = vec![0u8; data.len()];
    if r.read_at(0, &mut all).is_ok() {
        prop_assert!(all == data, "read_at returned wrong bytes");
    }
    let mut out = Vec::new();
    if r.copy_to(&mut out, &NoProgress, &AtomicBool::new(false))
        .is_ok()
    {
        prop_assert!(out == data, "copy_to returned wrong bytes");
    }
    Ok(())
}

#[test]
fn every_truncation_is_refused() {
    let (bytes, _) = sample();
    for len in 0..bytes.len() {
        let r = ContainerReader::from_source(Box::new(bytes[..len].to_vec()), FS);
        assert!(
            r.is_err(),
            "a prefix of {len} of {} bytes opened",
            bytes.len()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn bit_flips_never_give_wrong_bytes(flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..4)) {
        let (mut bytes, data) = sample();
        for (at, bit) in &flips {
            let i = at.index(bytes.len());
            bytes[i] ^= 1 << bit;
        }
        never_wrong(bytes, &data)?;
    }

    #[test]
    fn bit_flips_in_frames_are_caught(at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let (mut bytes, data) = sample();
        let data_end = seek_table::read_layout(&bytes).unwrap().data_end() as usize;
        let i = at.index(data_end);
        bytes[i] ^= 1 << bit;
        never_wrong(bytes, &data)?;
    }

    #[test]
    fn lying_seek_tables_never_give_wrong_bytes(
        entry in 0usize..4,
        field in 0usize..2,
        value in prop_oneof![any::<u32>(), 0u32..10_000, Just(0u32), Just(u32::MAX)],
    ) {
        let (mut bytes, data) = sample();
        let n = bytes.len();
        let frames = 4; // FS + 100, FS, FS + 5 bytes in 4 KiB frames
        let at = n - 9 - frames * 8 + entry * 8 + field * 4;
        bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
        never_wrong(bytes, &data)?;
    }

    #[test]
    fn absurd_footers_are_refused(count in any::<u32>(), descriptor in any::<u8>(), prefix in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut bytes = prefix;
        bytes.extend(count.to_le_bytes());
        bytes.push(descriptor);
        bytes.extend(0x8F92_EAB1u32.to_le_bytes());
        if let Ok(r) = ContainerReader::from_source(Box::new(bytes), FS) {
            // Only an empty table can be valid here.
            prop_assert_eq!(r.frame_count(), 0);
        }
    }

    #[test]
    fn random_bytes_are_refused_or_harmless(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(r) = ContainerReader::from_source(Box::new(bytes), FS) {
            let _ = r.copy_to(&mut Vec::new(), &NoProgress, &AtomicBool::new(false));
        }
    }
}

/// A run of zero frames is known as such without decompressing each: the reader learns
/// the pattern once, then answers from the compressed bytes alone.
#[test]
fn zero_runs_are_known_without_reading_them() {
    use crate::ByteSource;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("z.core.zst");
    let data = noise(11, FS);
    let zeros = vec![0u8; 40 * FS];
    let done = write_chunks(&path, &[&data, &zeros, &data], opts(FS, 2));
    assert_eq!(done.zero_frames, 40);
    let r = ContainerReader::open(&path).unwrap();
    assert_eq!(r.zero_run_end(0), None, "a frame of noise is no zero run");
    let start = FS as u64;
    assert_eq!(r.zero_run_end(start + 5), Some(start + 40 * FS as u64));
    assert_eq!(r.zero_run_end(start + 40 * FS as u64), None);
}

#[test]
fn zero_detection() {
    let mut v = vec![0u8; 4096 + 3];
    assert!(is_zero(&v));
    assert!(is_zero(&[]));
    for i in [0, 63, 64, 4095, 4096, 4098] {
        v[i] = 1;
        assert!(!is_zero(&v), "{i}");
        v[i] = 0;
    }
}

#[test]
fn write_zeros_equals_writing_zero_bytes() {
    let dir = tempfile::tempdir().unwrap();
    // Runs that start and end inside frames, span many, and fill exactly one.
    for (before, zeros, after) in [
        (0, 5 * FS, 0),
        (3, 5 * FS + 7, 11),
        (FS - 1, 2, 1),
        (FS, FS, FS),
    ] {
        let mut data = noise(7, before);
        data.resize(before + zeros, 0);
        data.extend_from_slice(&text(after));
        let plain = dir.path().join("plain.core.zst");
        let plain_done = write_chunks(&plain, &[&data], opts(FS, 2));
        let fast = dir.path().join("fast.core.zst");
        let mut w = ContainerWriter::create(&fast, opts(FS, 2)).unwrap();
        w.write_all(&data[..before]).unwrap();
        w.write_zeros(zeros as u64).unwrap();
        w.write_all(&data[before + zeros..]).unwrap();
        let mut meta = Metadata::new("t");
        meta.created_unix = 0;
        meta.origin = Some("test".into());
        let fast_done = w.finish(meta).unwrap();
        assert_eq!(fast_done.frames_blake3, plain_done.frames_blake3);
        assert_eq!(fast_done.zero_frames, plain_done.zero_frames);
        check_file(&fast, &data, FS);
    }
}

#[test]
fn format_1_files_still_read_and_verify() {
    // Written by coroner before format 2: the sha256 of the whole content.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/captures/panic.core.zst");
    let r = ContainerReader::open(&path).unwrap();
    let meta = r.metadata().unwrap();
    assert_eq!(meta.format_version, 1);
    assert!(meta.content_frames_blake3.is_empty());
    let mut out = Vec::new();
    let digest = r
        .copy_to(&mut out, &NoProgress, &AtomicBool::new(false))
        .unwrap();
    assert_eq!(digest, ContentDigest::Sha256(sha_hex(&out)));
    assert_eq!(digest.hex(), meta.content_sha256);
    // One flipped digit of the recorded sha256 is caught.
    let mut bytes = std::fs::read(&path).unwrap();
    let at = find(&bytes, meta.content_sha256.as_bytes()).unwrap();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    let r = ContainerReader::from_source(Box::new(bytes), 1 << 20).unwrap();
    let e = r
        .copy_to(&mut Vec::new(), &NoProgress, &AtomicBool::new(false))
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Checksum {
                field: "content_sha256",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn verify_skips_zero_frames_and_still_catches_a_lie() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("z.core.zst");
    let mut data = vec![0u8; 40 * FS];
    data[5 * FS..6 * FS].copy_from_slice(&noise(3, FS));
    data.extend_from_slice(&text(100));
    let done = write_chunks(&path, &[&data], opts(FS, 2));
    assert!(done.zero_frames >= 38);
    let r = ContainerReader::open(&path).unwrap();
    let got = r.verify(&NoProgress, &AtomicBool::new(false)).unwrap();
    assert_eq!(
        got,
        ContentDigest::FramesBlake3(frames_blake3_of(&data, FS))
    );
    let mut bytes = std::fs::read(&path).unwrap();
    let at = find(&bytes, done.frames_blake3.as_bytes()).unwrap();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    let r = ContainerReader::from_source(Box::new(bytes), 1 << 20).unwrap();
    let e = r.verify(&NoProgress, &AtomicBool::new(false)).unwrap_err();
    assert!(matches!(e, Error::Checksum { .. }), "{e:?}");
}
