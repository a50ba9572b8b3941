//! Real guests from the kit: freeze, dump with qemu's own `dump-guest-memory`, compress
//! with coroner, and check the result against qemu and `zstd -d`.

use coroner_samples::kit::{self, Guest, GuestOptions, Scenario};

use crate::util::{coroner, frames_blake3_file, sha256_file, unhex, zstd_decompress, Dir};

/// Freezes a guest, dumps it, compresses the dump, and checks everything that the
/// foundation promises. Returns the inspect JSON of the container.
fn freeze_dump_check(guest: &mut Guest, scenario: Scenario, dir: &Dir) -> serde_json::Value {
    let state = guest.freeze(scenario).unwrap();
    assert_eq!(state, scenario.run_state());
    let regs = guest.qmp.hmp("info registers -a").unwrap();
    let expected = kit::rip_cr3_from_info_registers(&regs);
    assert_eq!(expected.len(), 2, "info registers -a:\n{regs}");

    let elf = dir.join("guest.elf");
    guest.dump(&elf, "elf").unwrap();
    // Dumping a frozen guest does not change its run state.
    assert_eq!(guest.qmp.run_state().unwrap(), scenario.run_state());

    coroner(
        dir.path(),
        &["compress", "guest.elf", "-o", "guest.core.zst"],
    )
    .expect_code(0);
    zstd_decompress(dir.path(), "guest.core.zst", "unzstd.elf");
    let want = sha256_file(&elf);
    assert_eq!(
        sha256_file(&dir.join("unzstd.elf")),
        want,
        "zstd -d differs from qemu's ELF"
    );

    let r = coroner(dir.path(), &["inspect", "guest.core.zst", "--json"]);
    r.expect_code(0);
    let j = r.json();
    assert_eq!(
        j["metadata"]["content_frames_blake3"],
        frames_blake3_file(&elf).as_str()
    );
    let v = coroner(dir.path(), &["verify", "guest.core.zst", "--json"]);
    v.expect_code(0);
    assert_eq!(v.json()["files"][0]["verdict"], "ok");
    let vcpus = j["vcpus"].as_array().unwrap();
    assert_eq!(vcpus.len(), expected.len());
    for (v, (rip, cr3)) in vcpus.iter().zip(&expected) {
        assert_eq!(
            unhex(&v["qemu"]["rip"]),
            Some(*rip),
            "vCPU {}: RIP",
            v["index"]
        );
        assert_eq!(
            unhex(&v["qemu"]["cr"][3]),
            Some(*cr3),
            "vCPU {}: CR3",
            v["index"]
        );
        assert_eq!(unhex(&v["prstatus"]["regs"]["rip"]), Some(*rip));
    }
    // The plain ELF and the container describe the same dump.
    let plain = coroner(dir.path(), &["inspect", "guest.elf", "--json"]);
    plain.expect_code(0);
    assert_eq!(plain.json()["vcpus"], j["vcpus"]);
    assert_eq!(plain.json()["ranges"], j["ranges"]);

    coroner(
        dir.path(),
        &["export", "guest.core.zst", "-o", "export.elf"],
    )
    .expect_code(0);
    assert_eq!(sha256_file(&dir.join("export.elf")), want);
    j
}

#[test]
fn stopped_guest_dump_compresses_exactly() {
    if !kit::available_or_skip("stopped_guest_dump_compresses_exactly") {
        return;
    }
    let dir = Dir::new();
    let mut guest = Guest::boot(&GuestOptions {
        vmcoreinfo: true,
        ..GuestOptions::default()
    })
    .unwrap();
    let j = freeze_dump_check(&mut guest, Scenario::Stop, &dir);
    assert_eq!(j["machine"], "x86_64");
    assert_eq!(
        j["layout"], "sections-first",
        "qemu >= 7.2 writes section headers first"
    );
    // With -device vmcoreinfo and qemu_fw_cfg in the guest, the dump carries the note.
    let release = j["vmcoreinfo"]["osrelease"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(release.ends_with("-amd64"), "OSRELEASE {release:?}");
    assert!(j["vcpus"]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v["mode"]["mode"] == "long64"));
    // 512 MiB of RAM below 4 GiB, minus the VGA/BIOS holes.
    let mem = j["memory_bytes"].as_u64().unwrap();
    assert!(mem > 500 << 20 && mem <= 520 << 20, "memory {mem}");
}

#[test]
fn panicked_guest_dump_compresses_exactly() {
    if !kit::available_or_skip("panicked_guest_dump_compresses_exactly") {
        return;
    }
    let dir = Dir::new();
    let mut guest = Guest::boot(&GuestOptions::default()).unwrap();
    let j = freeze_dump_check(&mut guest, Scenario::Panic, &dir);
    // No -device vmcoreinfo: the dump has no note (recovering it from RAM is analysis).
    assert!(j["vmcoreinfo"].is_null());
    assert!(
        guest.serial_log().contains("Kernel panic"),
        "{}",
        guest.serial_log()
    );
    assert!(guest
        .qmp
        .events()
        .iter()
        .any(|e| e.event == "GUEST_PANICKED"));
}

#[test]
fn machine_check_guest_dump_compresses_exactly() {
    if !kit::available_or_skip("machine_check_guest_dump_compresses_exactly") {
        return;
    }
    let dir = Dir::new();
    let mut guest = Guest::boot(&GuestOptions::default()).unwrap();
    freeze_dump_check(&mut guest, Scenario::Mce, &dir);
    let mf = guest
        .qmp
        .events()
        .iter()
        .find(|e| e.event == "MEMORY_FAILURE")
        .cloned()
        .unwrap_or_else(|| panic!("no MEMORY_FAILURE event: {:?}", guest.qmp.events()));
    assert_eq!(mf.data["recipient"], "guest");
    assert_eq!(mf.data["flags"]["action-required"], true);
}
