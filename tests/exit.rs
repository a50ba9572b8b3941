//! `coroner exit` on real KVM emulation failures: tiny bare-metal guests from the kit run
//! `addps xmm0, [mem]` against the VGA window under `-accel kvm`; qemu reports the failure
//! and freezes the guest in `internal-error`; coroner captures it and explains it.

use std::time::Duration;

use coroner_samples::baremetal::{kvm_or_skip, BareGuest, Variant, FAULT_GPA};
use serde_json::Value;

use crate::util::{coroner, hex, Dir};

pub(crate) fn check_instruction(j: &Value, variant: Variant, mode: &str) {
    let i = &j["instruction"];
    assert_eq!(i["disassembly"]["mnemonic"], "addps", "{j:#}");
    let bytes: Vec<u64> = i["disassembly"]["bytes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_u64().unwrap())
        .collect();
    let want: Vec<u64> = variant
        .fault_bytes()
        .iter()
        .map(|&b| u64::from(b))
        .collect();
    assert_eq!(bytes, want);
    assert_eq!(i["emulator"]["emulated"], false, "{:#}", i["emulator"]);
    assert!(
        i["emulator"]["class"].as_str().unwrap().contains("SSE"),
        "{:#}",
        i["emulator"]
    );
    assert_eq!(j["mode"]["mode"], mode);
    assert_eq!(j["rip"], hex(0x7c00 + variant.fault_offset() as u64));
    assert_eq!(j["suberror"]["number"], 1);
    let op = &j["operands"][0];
    assert_eq!(op["operand"]["access"], "read");
    assert_eq!(op["operand"]["size"], 16);
    assert_eq!(op["operand"]["linear"], hex(FAULT_GPA));
    assert_eq!(op["gpa"], hex(FAULT_GPA));
    // KVM's own copy of the instruction bytes (host kernel 5.16+).
    let kvm: Vec<u64> = j["data"]["insn_bytes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_u64().unwrap())
        .collect();
    assert!(kvm.starts_with(&want), "{kvm:?}");
}

fn run(variant: Variant, mode: &str) {
    let dir = Dir::new();
    let mut guest = BareGuest::boot(variant).unwrap();
    guest
        .wait_for_state("internal-error", Duration::from_secs(120))
        .unwrap();
    let socket = guest.tool_socket().display().to_string();
    coroner(
        dir.path(),
        &["capture", "--qmp", &socket, "-o", "kvm.core.zst"],
    )
    .expect_code(0);
    assert_eq!(guest.qmp.run_state().unwrap(), "internal-error");

    // From the capture: qemu's log, `info mtree -f` and guest memory are in it.
    let r = coroner(dir.path(), &["exit", "kvm.core.zst", "--json"]);
    r.expect_code(0);
    let j = r.json();
    check_instruction(&j, variant, mode);
    assert_eq!(j["run_state"], "internal-error");
    assert_eq!(j["vcpu"], 0);
    let owner = &j["operands"][0]["owner"];
    assert_eq!(owner["region"]["name"], "vga-lowmem", "{owner:#}");
    assert_eq!(owner["region"]["kind"], "i/o");
    assert_eq!(j["rip_owner"]["region"]["name"], "pc.ram");
    let checks = j["instruction"]["cross_checks"].as_array().unwrap();
    assert!(
        checks
            .iter()
            .all(|c| c.as_str().unwrap().contains("the same")),
        "{checks:?}"
    );
    let verdict = j["verdict"].as_str().unwrap();
    assert!(
        verdict.starts_with("internal-error: KVM emulation failure: `addps"),
        "{verdict}"
    );
    assert!(verdict.contains("vga-lowmem"), "{verdict}");
    let text = coroner(dir.path(), &["exit", "kvm.core.zst"]);
    text.expect_code(0);
    assert!(text.stdout().contains("NOT emulated"), "{}", text.stdout());

    // A slim capture keeps what the analysis read and answers the same.
    coroner(
        dir.path(),
        &["slim", "kvm.core.zst", "-o", "kvm.slim.core.zst"],
    )
    .expect_code(0);
    crate::slim::same_answer(&dir, &["exit"], "kvm.core.zst", "kvm.slim.core.zst");

    // From qemu's log alone: the same instruction, operand and mode.
    let log = dir.path().join("qemu.log");
    std::fs::write(&log, guest.qemu_log()).unwrap();
    let r = coroner(
        dir.path(),
        &["exit", "--qemu-log", log.to_str().unwrap(), "--json"],
    );
    r.expect_code(0);
    let j = r.json();
    check_instruction(&j, variant, mode);
    assert_eq!(j["registers_source"], "qemu's register dump in the log");

    // And `analyze` leads with it.
    let a = coroner(dir.path(), &["analyze", "kvm.core.zst", "--json"]);
    a.expect_code(0);
    let v = a.json()["verdict"].as_str().unwrap().to_string();
    assert!(
        v.starts_with("internal-error: KVM emulation failure"),
        "{v}"
    );
    // No vCPU maps a kernel: "no Linux kernel" is decided from the vCPU state, without
    // a scan of RAM.
    let problems = a.json()["problems"].to_string();
    assert!(
        problems.contains("not a running x86_64 Linux kernel"),
        "{problems}"
    );
}

#[test]
fn kvm_emulation_failure_in_real_mode() {
    if !kvm_or_skip("kvm_emulation_failure_in_real_mode") {
        return;
    }
    run(Variant::RealMode, "real mode");
}

#[test]
fn kvm_emulation_failure_in_32_bit_protected_mode() {
    if !kvm_or_skip("kvm_emulation_failure_in_32_bit_protected_mode") {
        return;
    }
    run(Variant::Protected32, "32-bit protected mode");
}
