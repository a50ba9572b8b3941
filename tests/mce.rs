//! `coroner mce` against real machine checks injected with HMP `mce` into guests of the
//! kit: every field of the JSON compared with what was injected and with qemu's
//! `MEMORY_FAILURE` events.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use coroner_samples::kit::{self, Guest, GuestOptions};
use serde_json::Value;

use crate::util::{coroner, hex, Dir};

/// One injection: `mce [-b] CPU BANK STATUS MCG_STATUS ADDR MISC`.
struct Injection {
    broadcast: bool,
    cpu: u64,
    bank: u64,
    status: u64,
    mcg: u64,
    addr: u64,
    misc: u64,
}

impl Injection {
    fn hmp(&self) -> String {
        format!(
            "mce {}{} {} {:#x} {:#x} {:#x} {:#x}",
            if self.broadcast { "-b " } else { "" },
            self.cpu,
            self.bank,
            self.status,
            self.mcg,
            self.addr,
            self.misc
        )
    }
}

/// Corrected memory-controller read error on channel 0, with ADDRV and MISCV.
const CORRECTED_MEM: Injection = Injection {
    broadcast: false,
    cpu: 0,
    bank: 2,
    status: 0x9c00_0000_0000_0090,
    mcg: 0x5,
    addr: 0x123_4000,
    misc: 0x8c,
};
/// Corrected instruction-fetch error, without ADDRV or MISCV.
const CORRECTED_IFETCH: Injection = Injection {
    broadcast: false,
    cpu: 1,
    bank: 0,
    status: 0x9000_0000_0000_0150,
    mcg: 0x5,
    addr: 0,
    misc: 0,
};
/// Action optional: memory scrubbing error (what qemu injects for BUS_MCEERR_AO), local
/// to CPU 0 (MCG_STATUS.LMCES), so no other record follows it into the kernel's pool.
const ACTION_OPTIONAL: Injection = Injection {
    broadcast: false,
    cpu: 0,
    bank: 9,
    status: 0xbd00_0000_0000_00c0,
    mcg: 0xd,
    addr: 0x345_6000,
    misc: 0x8c,
};
/// Action required: data load (what qemu injects for BUS_MCEERR_AR).
const ACTION_REQUIRED: Injection = Injection {
    broadcast: true,
    cpu: 1,
    bank: 1,
    status: 0xbd80_0000_0000_0134,
    mcg: 0x7,
    addr: 0x234_5000,
    misc: 0x86,
};

fn spawn_wait_frozen(dir: &Dir, guest: &Guest, output: &str) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_coroner"))
        .current_dir(dir.path())
        .args(["capture", "--qmp"])
        .arg(guest.tool_socket())
        .args(["--wait-frozen", "180", "-o", output])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Let it connect and start listening before anything happens.
    std::thread::sleep(Duration::from_millis(1500));
    child
}

fn finish(child: Child) {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "capture failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The record of `coroner mce --json` on CPU `cpu`, bank `bank`, with `status`.
fn record(report: &Value, cpu: u64, bank: u64, status: u64) -> &Value {
    report["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["raw"]["cpu"] == cpu && r["raw"]["bank"] == bank && r["raw"]["status"] == hex(status)
        })
        .unwrap_or_else(|| {
            panic!(
                "no record cpu {cpu} bank {bank} status {status:#x} in {:#}",
                report["records"]
            )
        })
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

/// Checks the fields a record must carry from `inj`, whatever its source.
fn check_injected(r: &Value, inj: &Injection, addrv: bool) {
    assert_eq!(r["raw"]["status"], hex(inj.status), "{r:#}");
    if addrv {
        assert_eq!(r["raw"]["addr"], hex(inj.addr), "{r:#}");
        assert_eq!(r["raw"]["misc"], hex(inj.misc), "{r:#}");
        assert_eq!(r["page"]["pfn"], inj.addr >> 12, "{r:#}");
        assert_eq!(r["page"]["in_ram"], true, "{r:#}");
    } else {
        assert!(
            r["raw"]["addr"].is_null() || r["raw"]["addr"] == "0x0",
            "{r:#}"
        );
        assert!(r["page"].is_null(), "{r:#}");
    }
    // kvm64: GenuineIntel, family 15 model 6.
    assert_eq!(r["raw"]["cpuvendor"], 0, "{r:#}");
    assert_eq!(r["raw"]["cpuid"], 0xf61, "{r:#}");
    assert_eq!(r["decoded"]["vendor"], "intel", "{r:#}");
}

#[test]
fn machine_checks_injected_into_an_intel_guest_decode_as_injected() {
    if !kit::available_or_skip("machine_checks_injected_into_an_intel_guest") {
        return;
    }
    let dir = Dir::new();
    let mut guest = Guest::boot(&GuestOptions {
        vmcoreinfo: true,
        // The kernel polls the banks every second, so corrected errors are logged at once.
        append: "coroner.mce_poll=1".into(),
        extra_qemu: vec!["-cpu".into(), "kvm64".into()],
        ..GuestOptions::default()
    })
    .unwrap();

    // Phase 1: corrected and action-optional errors; the guest survives. Freeze it with
    // `stop` and capture.
    let first = spawn_wait_frozen(&dir, &guest, "recovered.core.zst");
    for inj in [&CORRECTED_MEM, &CORRECTED_IFETCH] {
        guest.qmp.hmp(&inj.hmp()).unwrap();
    }
    guest
        .wait_for_console("Bank 0: 9000000000000150", Duration::from_secs(30))
        .unwrap();
    guest
        .wait_for_console("Bank 2: 9c00000000000090", Duration::from_secs(30))
        .unwrap();
    guest.qmp.hmp(&ACTION_OPTIONAL.hmp()).unwrap();
    guest
        .wait_for_console("Memory failure: 0x3456", Duration::from_secs(30))
        .unwrap();
    guest.qmp.execute("stop", None).unwrap();
    finish(first);

    let r = coroner(dir.path(), &["mce", "recovered.core.zst", "--json"]);
    r.expect_code(0);
    let rep = r.json();
    assert!(
        rep["verdict"].as_str().unwrap().contains("none fatal"),
        "{}",
        rep["verdict"]
    );
    let ce = record(&rep, 0, 2, CORRECTED_MEM.status);
    check_injected(ce, &CORRECTED_MEM, true);
    assert_eq!(
        strings(&ce["decoded"]["status"]),
        ["VAL", "EN", "MISCV", "ADDRV"]
    );
    assert_eq!(ce["decoded"]["error"]["class"], "memory controller");
    assert_eq!(ce["decoded"]["corrected"], true);
    // Under SER the kernel's table grades a polled corrected error "keep".
    assert_eq!(ce["decoded"]["severity"]["level"], "keep");
    assert_eq!(ce["decoded"]["address_granularity"]["lsb"], 12);
    assert_eq!(ce["decoded"]["address_granularity"]["mode"], "physical");
    // The kernel logged it from its poll: MCG_STATUS read then, not the injected one.
    assert_eq!(ce["raw"]["mcgstatus"], "0x0");
    assert!(
        ce["origin"].as_str().unwrap().contains("qemu injected it"),
        "{ce:#}"
    );

    let ifetch = record(&rep, 1, 0, CORRECTED_IFETCH.status);
    check_injected(ifetch, &CORRECTED_IFETCH, false);
    assert_eq!(strings(&ifetch["decoded"]["status"]), ["VAL", "EN"]);
    assert_eq!(ifetch["decoded"]["error"]["class"], "cache hierarchy");
    assert!(ifetch["decoded"]["address_granularity"].is_null());

    // The action-optional record itself is not printed (the kernel handled it as a memory
    // failure), so it comes from memory, and the page shows the kernel's action.
    let ao = record(&rep, 0, 9, ACTION_OPTIONAL.status);
    check_injected(ao, &ACTION_OPTIONAL, true);
    assert_eq!(ao["raw"]["mcgstatus"], hex(ACTION_OPTIONAL.mcg));
    assert_eq!(ao["decoded"]["uc_kind"], "SRAO");
    assert_eq!(
        strings(&ao["decoded"]["mcg_status"]),
        ["RIPV", "MCIP", "LMCES"]
    );
    assert_eq!(
        ao["decoded"]["severity"]["message"],
        "Action optional: memory scrubbing error"
    );
    assert_eq!(ao["page"]["hwpoison"], true, "{ao:#}");
    assert!(ao["memory_failure"]
        .as_str()
        .unwrap()
        .contains("recovery action"));
    assert!(ao["sources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["source"] == "memory"));
    assert!(rep["records"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["fatal"] == false));
    let host = &rep["host"];
    assert_eq!(host["events_recorded"], true);
    assert_eq!(host["events"].as_array().unwrap().len(), 3, "{host:#}");
    // The page the action-optional error named was poisoned by the kernel.
    let mf = &rep["memory_failures"][0];
    assert_eq!(mf["page"]["pfn"], 0x3456);
    assert_eq!(mf["page"]["hwpoison"], true);

    // Phase 2: resume (the test does, never coroner), then the fatal action-required
    // error; capture waits for the panic.
    guest.qmp.execute("cont", None).unwrap();
    let second = spawn_wait_frozen(&dir, &guest, "fatal.core.zst");
    guest.qmp.hmp(&ACTION_REQUIRED.hmp()).unwrap();
    finish(second);
    assert_eq!(guest.qmp.run_state().unwrap(), "guest-panicked");

    let r = coroner(dir.path(), &["mce", "fatal.core.zst", "--json"]);
    r.expect_code(0);
    let rep = r.json();
    let ar = record(&rep, 1, 1, ACTION_REQUIRED.status);
    check_injected(ar, &ACTION_REQUIRED, true);
    assert_eq!(ar["fatal"], true);
    assert_eq!(ar["raw"]["mcgstatus"], hex(ACTION_REQUIRED.mcg));
    assert_eq!(ar["raw"]["cs"], 0x10);
    assert!(ar["raw"]["ip_symbol"].as_str().is_some());
    assert_eq!(
        strings(&ar["decoded"]["mcg_status"]),
        ["RIPV", "EIPV", "MCIP"]
    );
    assert_eq!(
        strings(&ar["decoded"]["status"]),
        ["VAL", "UC", "EN", "MISCV", "ADDRV", "S", "AR"]
    );
    assert_eq!(ar["decoded"]["uc_kind"], "SRAR");
    assert_eq!(ar["decoded"]["error"]["mcacod"], 0x134);
    assert_eq!(ar["decoded"]["address_granularity"]["lsb"], 6);
    assert_eq!(ar["decoded"]["severity"]["fatal"], true);
    assert_eq!(
        ar["decoded"]["severity"]["message"],
        "Data load in unrecoverable area of kernel"
    );
    // The kernel said the same in its own words, and kept the record in mces_seen.
    let lines = rep["kernel_lines"].as_array().unwrap();
    assert!(lines
        .iter()
        .any(|l| l["text"] == "Machine check: Data load in unrecoverable area of kernel"));
    assert!(lines.iter().any(|l| l["kind"] == "panic"));
    let said = lines
        .iter()
        .find_map(|l| l["text"].as_str()?.strip_prefix("Machine check: "))
        .unwrap();
    assert_eq!(ar["decoded"]["severity"]["message"], said);
    assert!(
        ar["sources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["location"] == "mces_seen[cpu 1]"),
        "{ar:#}"
    );
    // Tied to qemu's action-required MEMORY_FAILURE event.
    let ev = &rep["host"]["events"][ar["host_event"].as_u64().unwrap() as usize];
    assert_eq!(ev["action_required"], true);
    assert_eq!(ev["action"], "inject");
    assert_eq!(ev["recipient"], "guest");

    // A slim capture keeps what the MCE analysis read, memory records included.
    coroner(
        dir.path(),
        &["slim", "fatal.core.zst", "-o", "fatal.slim.core.zst"],
    )
    .expect_code(0);
    crate::slim::same_answer(&dir, &["mce"], "fatal.core.zst", "fatal.slim.core.zst");

    let a = coroner(dir.path(), &["analyze", "fatal.core.zst", "--json"]);
    a.expect_code(0);
    let verdict = a.json()["verdict"].as_str().unwrap().to_string();
    assert!(
        verdict.starts_with("guest-panicked: kernel panic: fatal machine check on CPU 1 bank 1"),
        "{verdict}"
    );
    let text = coroner(dir.path(), &["mce", "fatal.core.zst"]);
    text.expect_code(0);
    assert!(text.stdout().contains("FATAL"), "{}", text.stdout());

    // Phase 3, on the same qemu after a reset: the action-required error to vCPU 1 only
    // (no `-b`), as qemu delivers a host memory error. kvm64 has no LMCE, so the kernel
    // waits for the other CPU in the broadcast rendezvous and panics before it logs the
    // record. (RAM and the banks survive the reset: the records of phase 2 are seen again,
    // so only the rendezvous is checked here.)
    guest.qmp.execute("system_reset", None).unwrap();
    guest.qmp.execute("cont", None).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    while guest.serial_log().matches(kit::READY_LINE).count() < 2 {
        if std::time::Instant::now() >= deadline {
            // Seen once in CI-like load (the suite took twice its usual time): keep what
            // the guest printed, to tell a slow boot from a hang.
            let serial = guest.serial_log();
            let tail: Vec<&str> = serial.lines().rev().take(40).collect();
            panic!(
                "no second ready line after the reset; the console's last lines:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let third = spawn_wait_frozen(&dir, &guest, "rendezvous.core.zst");
    let one_cpu = Injection {
        broadcast: false,
        ..ACTION_REQUIRED
    };
    guest.qmp.hmp(&one_cpu.hmp()).unwrap();
    finish(third);
    // What the guest printed (its kernel log in the dump: the serial console does not
    // always get the last lines out before the freeze).
    let dmesg = coroner(dir.path(), &["dmesg", "rendezvous.core.zst"]).stdout();
    assert!(
        dmesg.contains(
            "Kernel panic - not syncing: Timeout: Not all CPUs entered broadcast exception handler"
        ),
        "{}",
        &dmesg[dmesg.len().saturating_sub(2000)..]
    );
    assert!(
        dmesg.contains("mce: CPUs not responding to MCE broadcast"),
        "{dmesg}"
    );
    let r = coroner(dir.path(), &["mce", "rendezvous.core.zst", "--json"]);
    r.expect_code(0);
    let rep = r.json();
    let z = &rep["rendezvous"];
    assert_eq!(
        z["message"], "Timeout: Not all CPUs entered broadcast exception handler",
        "{rep:#}"
    );
    assert_eq!(z["missing_cpus"], serde_json::json!([0]), "{z:#}");
    let v = rep["verdict"].as_str().unwrap();
    assert!(v.starts_with("machine-check rendezvous timeout"), "{v}");
    assert!(v.contains("CPU(s) 0 did not answer"), "{v}");
    assert!(v.contains("MEMORY_FAILURE"), "{v}");
    let a = coroner(dir.path(), &["analyze", "rendezvous.core.zst", "--json"]).json();
    assert!(
        a["verdict"]
            .as_str()
            .unwrap()
            .contains("kernel panic: machine-check rendezvous timeout"),
        "{}",
        a["verdict"]
    );
    // The vCPU that took the machine check is the one that panicked.
    assert_eq!(a["panic_cpu"]["cpu"], 1, "{}", a["panic_cpu"]);
    let text = coroner(dir.path(), &["mce", "rendezvous.core.zst"]).stdout();
    assert!(text.contains("LMCE"), "{text}");
}
