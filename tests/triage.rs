//! `coroner triage` over a directory of real captures: the bundled samples (a sysrq
//! panic, a fatal machine check injected by qemu, a KVM emulation failure, a healthy
//! stopped guest), copies standing for more guests, and a kit guest that oopses inside a
//! module, captured by `watch` (which signs it) and by `capture` (which does not).
//! Signatures are stored beside the captures, a re-run reads only what is new or changed,
//! and a damaged capture or a planted signature file is handled.

use std::path::Path;
use std::time::Duration;

use coroner_samples::kit::{self, Guest, GuestOptions};
use serde_json::Value;

use crate::util::{coroner, Dir};

fn sample(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples/captures")
        .join(format!("{name}.core.zst"))
}

fn group<'a>(j: &'a Value, prefix: &str) -> &'a Value {
    j["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["signature"].as_str().unwrap().starts_with(prefix))
        .unwrap_or_else(|| panic!("no group {prefix:?}: {j:#}"))
}

#[test]
fn triage_groups_captures_by_signature_and_reads_only_new_ones() {
    if !kit::available_or_skip("triage_groups_captures_by_signature_and_reads_only_new_ones") {
        return;
    }
    let dir = Dir::new();
    let caps = dir.join("caps");
    std::fs::create_dir(&caps).unwrap();
    for (name, copies) in [
        ("panic", 3),
        ("mce-fatal", 1),
        ("kvm-emulation-failure", 1),
        ("healthy-stopped", 1),
    ] {
        for i in 0..copies {
            std::fs::copy(sample(name), caps.join(format!("{name}-{i}.core.zst"))).unwrap();
        }
    }
    // A guest that oopses in a module (a panic under oops=panic), captured by watch.
    let guest = Guest::boot(&GuestOptions {
        append: "coroner.run=oops coroner.run_after=2".into(),
        ..GuestOptions::default()
    })
    .unwrap();
    let sock = guest.tool_socket().display().to_string();
    let mut w = crate::watch::Watch::start(
        dir.path(),
        &[
            "--qmp",
            &format!("oopser={sock}"),
            "--dir",
            "caps",
            "--once",
        ],
    );
    let done = w.expect("captured", None, Duration::from_secs(180));
    assert_eq!(w.wait(Duration::from_secs(60)), 0, "{}", w.stderr());
    let watched = done["capture"].as_str().unwrap().to_string();
    // watch signed it before it exited.
    let sig = format!("{watched}.sig.json");
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&sig).unwrap()).unwrap();
    assert!(
        stored["signature"].as_str().unwrap().starts_with(
            "BUG: unable to handle kernel NULL pointer dereference in coroner_fault_oops"
        ),
        "{stored:#}"
    );
    let mode = std::os::unix::fs::MetadataExt::mode(&std::fs::metadata(&sig).unwrap());
    assert_eq!(mode & 0o777, 0o600);
    // The same frozen guest captured again by hand: not signed yet.
    let sock2 = guest.tool_socket().display().to_string();
    coroner(
        dir.path(),
        &["capture", "--qmp", &sock2, "-o", "caps/by-hand.core.zst"],
    )
    .expect_code(0);

    let r = coroner(dir.path(), &["triage", "caps", "--json"]);
    r.expect_code(0);
    let j = r.json();
    assert_eq!(j["captures"], 8, "{j:#}");
    assert_eq!(j["signed_now"], 7, "{j:#}");
    assert_eq!(j["from_stored_signatures"], 1, "{j:#}");
    assert_eq!(j["groups"].as_array().unwrap().len(), 5, "{j:#}");
    let panics = group(
        &j,
        "kernel panic: sysrq triggered crash in sysrq_handle_crash",
    );
    assert_eq!(panics["count"], 3);
    let oops = group(
        &j,
        "BUG: unable to handle kernel NULL pointer dereference in coroner_fault_oops",
    );
    assert_eq!(oops["count"], 2, "{oops:#}");
    // watch's capture names the guest; the one by hand does not.
    assert_eq!(oops["guests"], serde_json::json!(["oopser"]), "{oops:#}");
    // A machine check by its class and bank, and whether qemu injected it.
    let mce = group(
        &j,
        "machine check: uncorrected level-NUM data cache data-read error at ADDR in bank 1 (injected by qemu)",
    );
    assert_eq!(mce["count"], 1);
    assert_eq!(mce["run_state"], "guest-panicked");
    let kvm = group(&j, "KVM emulation failure: `addps");
    assert!(
        kvm["signature"].as_str().unwrap().contains("vga-lowmem"),
        "{kvm:#}"
    );
    let healthy = group(&j, "paused: no failure the dump shows");
    assert_eq!(healthy["count"], 1);
    // Sorted by count; each group's example is one of its captures.
    assert_eq!(j["groups"][0]["count"], 3);
    assert!(Path::new(panics["example"].as_str().unwrap()).exists());
    // Its title is analyze's.
    let a = coroner(dir.path(), &["analyze", &watched, "--json"]);
    assert_eq!(a.json()["title"], oops["signature"]);

    // A re-run reads only what is new: nothing.
    let r = coroner(dir.path(), &["triage", "caps", "--json"]);
    r.expect_code(0);
    let again = r.json();
    assert_eq!(again["signed_now"], 0, "{again:#}");
    assert_eq!(again["groups"], j["groups"]);
    // A capture named twice (its directory, and itself) counts once.
    let twice = coroner(
        dir.path(),
        &["triage", "caps", "caps/panic-1.core.zst", "--json"],
    );
    twice.expect_code(0);
    assert_eq!(twice.json()["groups"], j["groups"]);

    // One new capture, one damaged capture, one planted signature file (a symlink to a
    // file that must not change).
    std::fs::copy(sample("panic"), caps.join("panic-new.core.zst")).unwrap();
    let bytes = std::fs::read(sample("panic")).unwrap();
    std::fs::write(caps.join("cut.core.zst"), &bytes[..bytes.len() / 2]).unwrap();
    let victim = dir.join("victim.txt");
    std::fs::write(&victim, "keep me\n").unwrap();
    std::fs::remove_file(caps.join("panic-1.core.zst.sig.json")).unwrap();
    std::os::unix::fs::symlink(&victim, caps.join("panic-1.core.zst.sig.json")).unwrap();
    let r = coroner(dir.path(), &["triage", "caps", "--json"]);
    r.expect_code(3);
    let j = r.json();
    assert_eq!(j["signed_now"], 2, "{j:#}");
    assert_eq!(j["captures"], 9);
    assert_eq!(group(&j, "kernel panic: sysrq")["count"], 4);
    let bad = &j["unreadable"][0];
    assert!(
        bad["capture"].as_str().unwrap().ends_with("cut.core.zst"),
        "{j:#}"
    );
    assert!(r.stderr().contains("cut.core.zst"), "{}", r.stderr());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me\n");
    assert!(!caps
        .join("panic-1.core.zst.sig.json")
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_symlink());

    // --since: the samples were captured in the past, the kit's captures now.
    let r = coroner(dir.path(), &["triage", "caps", "--since", "1h", "--json"]);
    let j = r.json();
    assert_eq!(j["captures"], 2, "{j:#}");
    assert_eq!(j["older"], 7);
    // The text table on stdout.
    let t = coroner(dir.path(), &["triage", "caps"]);
    t.expect_code(3);
    let out = t.stdout();
    assert!(out.contains("COUNT") && out.contains("SIGNATURE"), "{out}");
    assert!(out.contains("kernel panic: sysrq triggered crash"), "{out}");
    coroner(dir.path(), &["triage", "--since", "sometime", "caps"]).expect_code(2);
}
