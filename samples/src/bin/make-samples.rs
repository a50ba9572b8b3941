//! `make-samples`: re-creates the bundled slim captures in `samples/captures/` with the
//! guest kit, `coroner capture` (waiting for the freeze, so the events are recorded) and
//! `coroner slim`, and writes each sample's expected analysis next to it.
//!
//! Usage: cargo build --release --workspace && target/release/make-samples [DIR]
//! (DIR defaults to samples/captures). Needs the kit (samples/kit/ensure.sh); the KVM
//! sample needs /dev/kvm and is skipped, saying so, without it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use coroner_samples::baremetal::{kvm_unavailable, BareGuest, Variant};
use coroner_samples::kit::{Guest, GuestOptions, Scenario};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() {
    if let Err(e) = run() {
        eprintln!("make-samples: {e}");
        std::process::exit(1);
    }
}

fn coroner() -> Res<PathBuf> {
    Ok(std::env::current_exe()?.with_file_name("coroner"))
}

/// Starts `coroner capture --wait-frozen` on `socket`, writing `out`.
fn start_capture(socket: &Path, out: &Path) -> Res<Child> {
    let child = Command::new(coroner()?)
        .args(["capture", "--wait-frozen", "300", "--qmp"])
        .arg(socket)
        .arg("-o")
        .arg(out)
        .stdout(Stdio::null())
        .spawn()?;
    std::thread::sleep(Duration::from_secs(2));
    Ok(child)
}

fn finish(child: Child) -> Res<()> {
    if !child.wait_with_output()?.status.success() {
        return Err("coroner capture failed".into());
    }
    Ok(())
}

/// Slims `full` into `dir/NAME.core.zst` and writes the expected outputs.
fn slim(full: &Path, dir: &Path, name: &str) -> Res<()> {
    let out = dir.join(format!("{name}.core.zst"));
    let _ = std::fs::remove_file(&out);
    let ok = Command::new(coroner()?)
        .arg("slim")
        .arg(full)
        .arg("-o")
        .arg(&out)
        .status()?
        .success();
    if !ok {
        return Err(format!("coroner slim {} failed", full.display()).into());
    }
    for cmd in ["analyze", "mce", "exit"] {
        let o = Command::new(coroner()?)
            .arg(cmd)
            .arg(&out)
            .arg("--json")
            .output()?;
        std::fs::write(dir.join(format!("{name}.{cmd}.json")), &o.stdout)?;
    }
    println!(
        "{}: {} bytes",
        out.display(),
        std::fs::metadata(&out)?.len()
    );
    Ok(())
}

fn linux(dir: &Path, name: &str, scenario: Scenario, opts: GuestOptions) -> Res<()> {
    let mut guest = Guest::boot(&opts)?;
    let full = guest.dir().join("full.core.zst");
    let cap = start_capture(&guest.tool_socket(), &full)?;
    guest.freeze(scenario)?;
    finish(cap)?;
    slim(&full, dir, name)
}

fn run() -> Res<()> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("samples/captures"));
    std::fs::create_dir_all(&dir)?;
    linux(&dir, "panic", Scenario::Panic, GuestOptions::default())?;
    linux(&dir, "mce-fatal", Scenario::Mce, GuestOptions::default())?;
    linux(
        &dir,
        "healthy-stopped",
        Scenario::Stop,
        GuestOptions::default(),
    )?;
    match kvm_unavailable() {
        Some(why) => eprintln!("skipping the KVM emulation-failure sample: {why}"),
        None => {
            let mut guest = BareGuest::boot(Variant::RealMode)?;
            guest.wait_for_state("internal-error", Duration::from_secs(120))?;
            let full = guest.dir().join("full.core.zst");
            let ok = Command::new(coroner()?)
                .args(["capture", "--qmp"])
                .arg(guest.tool_socket())
                .arg("-o")
                .arg(&full)
                .stdout(Stdio::null())
                .status()?
                .success();
            if !ok {
                return Err("coroner capture of the KVM guest failed".into());
            }
            slim(&full, &dir, "kvm-emulation-failure")?;
        }
    }
    Ok(())
}
