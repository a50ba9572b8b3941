//! `bench-watch`: how soon after a guest freezes its dump starts, event-driven against
//! polling. Not a test.
//!
//! Each run boots a tiny guest held in `prelaunch` (`-S`) whose boot sector panics through
//! pvpanic (`-action panic=pause`, TCG) a moment after `cont`. The latency is qemu's own
//! timestamp of `GUEST_PANICKED` (read on the harness's monitor) to the moment coroner
//! began the dump step (`dump_started_unix_us` in the capture's timings). Rows:
//!
//! - `coroner watch --once`, connected before the panic (the HA daemon);
//! - `coroner capture --wait-frozen`, started as the guest starts running (a one-shot
//!   waiter; it connects well before the firmware reaches the boot sector);
//! - a poller: `coroner status` every `--poll-interval` seconds until frozen, then
//!   `coroner capture` (what an HA monitor script does without `watch`).
//!
//! Usage: cargo build --release && target/release/bench-watch [--runs 20] [--mem MiB]
//!        [--poll-interval SECS] [--poll-runs N]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use coroner_samples::baremetal::{BareGuest, Variant};
use serde_json::Value;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() {
    if let Err(e) = run() {
        eprintln!("bench-watch: {e}");
        std::process::exit(1);
    }
}

fn run() -> Res<()> {
    let mut runs = 20usize;
    let mut poll_runs = 5usize;
    let mut mem = 256u32;
    let mut poll_interval = 1.0f64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--runs" => runs = val()?.parse()?,
            "--poll-runs" => poll_runs = val()?.parse()?,
            "--mem" => mem = val()?.parse()?,
            "--poll-interval" => poll_interval = val()?.parse()?,
            _ => return Err(format!("unknown argument {a}").into()),
        }
    }
    let coroner = std::env::current_exe()?.with_file_name("coroner");
    if !coroner.exists() {
        return Err(format!("{} not built: cargo build --release", coroner.display()).into());
    }
    let mut rows: Vec<(String, Vec<f64>)> = Vec::new();
    let mut watch = Vec::new();
    let mut waiter = Vec::new();
    let mut poller = Vec::new();
    for i in 0..runs {
        watch.push(one_run(&coroner, mem, Approach::Watch)?);
        if i < poll_runs {
            waiter.push(one_run(&coroner, mem, Approach::WaitFrozen)?);
            poller.push(one_run(&coroner, mem, Approach::Poll(poll_interval))?);
        }
        eprintln!(
            "run {}: watch {:.2} ms{}",
            i + 1,
            watch[i],
            match (waiter.get(i), poller.get(i)) {
                (Some(w), Some(p)) => format!(", capture --wait-frozen {w:.2} ms, poll {p:.1} ms"),
                _ => String::new(),
            }
        );
    }
    rows.push(("coroner watch (event-driven)".into(), watch));
    rows.push(("coroner capture --wait-frozen".into(), waiter));
    rows.push((
        format!("poll status every {poll_interval} s + capture"),
        poller,
    ));

    println!("freeze event (GUEST_PANICKED) -> dump start, {mem} MiB TCG guest");
    println!(
        "{:<38} {:>5} {:>10} {:>10} {:>10} {:>10} {:>9}",
        "approach", "runs", "min ms", "median ms", "p90 ms", "max ms", "x watch"
    );
    let base = median(&rows[0].1);
    for (name, v) in &rows {
        if v.is_empty() {
            continue;
        }
        let m = median(v);
        println!(
            "{:<38} {:>5} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {:>9.1}",
            name,
            v.len(),
            quantile(v, 0.0),
            m,
            quantile(v, 0.9),
            quantile(v, 1.0),
            m / base
        );
    }
    println!("target: watch median under 50 ms");
    Ok(())
}

#[derive(Clone, Copy)]
enum Approach {
    Watch,
    WaitFrozen,
    Poll(f64),
}

/// One guest, one panic, one capture; the latency in milliseconds.
fn one_run(coroner: &Path, mem: u32, approach: Approach) -> Res<f64> {
    let mut guest = BareGuest::boot_with(Variant::Pvpanic, mem, &["-S".to_string()])?;
    let dir = guest.dir().to_path_buf();
    let tool = guest.tool_socket();
    let since = guest.qmp.events().len();
    let started_us = match approach {
        Approach::Watch => {
            let mut child = Command::new(coroner)
                .args(["watch", "--json", "--once", "--qmp"])
                .arg(&tool)
                .arg("--dir")
                .arg(dir.join("caps"))
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()?;
            let out = child.stdout.take().ok_or("no stdout")?;
            let mut lines = BufReader::new(out).lines();
            let mut next = |event: &str| -> Res<Value> {
                for line in lines.by_ref() {
                    let v: Value = serde_json::from_str(&line?)?;
                    if v["event"] == event {
                        return Ok(v);
                    }
                }
                Err(format!("watch ended before {event}").into())
            };
            next("watching")?;
            guest.qmp.execute("cont", None)?;
            let v = next("captured")?;
            child.wait()?;
            let path = PathBuf::from(v["capture"].as_str().ok_or("no capture path")?);
            dump_started(coroner, &path)?
        }
        Approach::WaitFrozen => {
            // prelaunch counts as frozen for a capture: start it once the guest runs (the
            // firmware takes a few hundred ms before the boot sector panics).
            guest.qmp.execute("cont", None)?;
            capture(
                coroner,
                &tool,
                &dir.join("w.core.zst"),
                &["--wait-frozen", "60"],
            )?
        }
        Approach::Poll(interval) => {
            guest.qmp.execute("cont", None)?;
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let o = Command::new(coroner)
                    .args(["status", "--json", "--qmp"])
                    .arg(&tool)
                    .output()?;
                let v: Value = serde_json::from_slice(&o.stdout)?;
                if v["health"] == "frozen" {
                    break;
                }
                if Instant::now() > deadline {
                    return Err("the guest did not freeze in 60 s".into());
                }
                std::thread::sleep(Duration::from_secs_f64(interval));
            }
            capture(coroner, &tool, &dir.join("p.core.zst"), &[])?
        }
    };
    let e = guest
        .qmp
        .wait_event("GUEST_PANICKED", since, Duration::from_secs(30))?;
    Ok((started_us as f64 - e.time_us() as f64) / 1000.0)
}

/// Runs `coroner capture --json` with `extra` arguments; when its dump started.
fn capture(coroner: &Path, qmp: &Path, out: &Path, extra: &[&str]) -> Res<u64> {
    let o = Command::new(coroner)
        .args(["capture", "--json", "--qmp"])
        .arg(qmp)
        .arg("-o")
        .arg(out)
        .args(extra)
        .stderr(Stdio::inherit())
        .output()?;
    if !o.status.success() {
        return Err(format!("coroner capture {} failed", extra.join(" ")).into());
    }
    let v: Value = serde_json::from_slice(&o.stdout)?;
    v["timings"]["dump_started_unix_us"]
        .as_u64()
        .ok_or_else(|| "no dump_started_unix_us in capture's JSON".into())
}

/// `dump_started_unix_us` from a capture's metadata.
fn dump_started(coroner: &Path, capture: &Path) -> Res<u64> {
    let o = Command::new(coroner)
        .args(["inspect", "--json"])
        .arg(capture)
        .output()?;
    let v: Value = serde_json::from_slice(&o.stdout)?;
    v["metadata"]["capture"]["timings"]["dump_started_unix_us"]
        .as_u64()
        .ok_or_else(|| "no dump_started_unix_us in the capture's metadata".into())
}

fn median(v: &[f64]) -> f64 {
    quantile(v, 0.5)
}

fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[((s.len() - 1) as f64 * q).round() as usize]
}
