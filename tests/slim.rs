//! `coroner slim` on a real capture: every analysis command answers the same on the slim
//! capture, which is small, keeps the notes and metadata, and says which pages it dropped
//! (absent, never zeros).

use std::os::unix::fs::PermissionsExt;

use coroner_formats::{MemError, PhysAddr, PAGE};
use coroner_samples::kit::{self, Guest, GuestOptions, Scenario};

use crate::util::{coroner, Dir};

/// `coroner ARGS --json` on `full` and on `slim` give the same JSON.
pub fn same_answer(dir: &Dir, args: &[&str], full: &str, slim: &str) {
    let run = |file: &str| {
        let mut a = vec![args[0], file];
        a.extend_from_slice(&args[1..]);
        a.push("--json");
        let r = coroner(dir.path(), &a);
        r.expect_code(0);
        r.json()
    };
    assert_eq!(
        run(full),
        run(slim),
        "coroner {args:?} differs on the slim capture"
    );
}

#[test]
fn slim_capture_answers_like_the_full_one() {
    if !kit::available_or_skip("slim_capture_answers_like_the_full_one") {
        return;
    }
    let dir = Dir::new();
    let mut guest = Guest::boot(&GuestOptions::default()).unwrap();
    guest.freeze(Scenario::Panic).unwrap();
    let socket = guest.tool_socket().display().to_string();
    coroner(
        dir.path(),
        &["capture", "--qmp", &socket, "-o", "full.core.zst"],
    )
    .expect_code(0);
    drop(guest);

    let r = coroner(
        dir.path(),
        &["slim", "full.core.zst", "-o", "slim.core.zst", "--json"],
    );
    r.expect_code(0);
    let j = r.json();
    let (full_size, slim_size) = (
        std::fs::metadata(dir.join("full.core.zst")).unwrap().len(),
        std::fs::metadata(dir.join("slim.core.zst")).unwrap().len(),
    );
    assert_eq!(j["output_size"], slim_size);
    // Small: the pages the analyses read, the kernel's BTF (4 MB, for module names and
    // tasks) and ORC tables (3.8 MB, for backtraces) the largest parts.
    assert!(slim_size < 6 << 20, "slim capture is {slim_size} bytes");
    assert!(slim_size * 10 < full_size, "{slim_size} vs {full_size}");
    let mode = std::fs::metadata(dir.join("slim.core.zst"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    for args in [
        &["analyze"][..],
        &["dmesg"],
        &["mce"],
        &["modules"],
        &["ps"],
        &["sym", "panic", "sysrq_handle_crash", "init_uts_ns"],
    ] {
        same_answer(&dir, args, "full.core.zst", "slim.core.zst");
    }

    // The metadata says what it is; a dropped page is absent.
    let full = coroner_formats::open(&dir.join("full.core.zst")).unwrap();
    let slim = coroner_formats::open(&dir.join("slim.core.zst")).unwrap();
    let meta = slim.metadata.as_ref().unwrap();
    assert_eq!(
        meta.extra["slim"]["source_frames_blake3"],
        full.metadata
            .as_ref()
            .unwrap()
            .content_frames_blake3
            .as_str()
    );
    assert_eq!(meta.capture, full.metadata.as_ref().unwrap().capture);
    assert_eq!(slim.elf.vcpus, full.elf.vcpus);
    let kept: u64 = slim.mem().ranges().iter().map(|r| r.len() / PAGE).sum();
    assert_eq!(meta.extra["slim"]["pages"], kept);
    let dropped = full
        .mem()
        .ranges()
        .iter()
        .flat_map(|r| r.start.0 / PAGE..r.end.0 / PAGE)
        .find(|p| !slim.mem().is_present(PhysAddr(p * PAGE), PAGE))
        .unwrap();
    let mut b = [0u8; 8];
    assert!(full.mem().read_at(PhysAddr(dropped * PAGE), &mut b).is_ok());
    assert!(matches!(
        slim.mem().read_at(PhysAddr(dropped * PAGE), &mut b),
        Err(MemError::NotPresent { .. })
    ));
}
