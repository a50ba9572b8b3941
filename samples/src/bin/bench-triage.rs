//! `bench-triage`: `coroner triage` over a directory of N captures (copies of the bundled
//! slim samples of the kit's guests: a sysrq panic, a fatal machine check, a KVM
//! emulation failure, a healthy stopped guest), the first run (every capture analysed and
//! signed) and a re-run (every signature read back), beside the alternative without
//! triage: `coroner analyze --json` of each capture in turn, as a shell loop would (timed
//! on the first `--loop` captures and scaled to N, said so). Then the same captures in a
//! bucket of moto's S3 server on loopback (`triage s3://BUCKET/PREFIX/`: signed by ranged
//! reads, signature objects written beside them), first run and re-run, with the bytes
//! fetched. Not a test.
//!
//! Usage: cargo build --release --workspace &&
//!        target/release/bench-triage [--captures N] [--loop M] [--no-bucket]

use std::path::Path;
use std::process::Command;
use std::time::Instant;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() {
    if let Err(e) = run() {
        eprintln!("bench-triage: {e}");
        std::process::exit(1);
    }
}

/// Runs `coroner triage DIR --json` with `extra`: (seconds, the report).
fn triage(coroner: &Path, dir: &Path, extra: &[&str]) -> Res<(f64, serde_json::Value)> {
    let (secs, report, _) = triage_env(coroner, dir, extra, &[])?;
    Ok((secs, report))
}

/// [`triage`] with `env`, also returning stderr.
fn triage_env(
    coroner: &Path,
    dir: &Path,
    extra: &[&str],
    env: &[(&'static str, String)],
) -> Res<(f64, serde_json::Value, String)> {
    let t = Instant::now();
    let out = Command::new(coroner)
        .arg("triage")
        .arg(dir)
        .arg("--json")
        .args(extra)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()?;
    let secs = t.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(format!("triage failed: {stderr}").into());
    }
    Ok((secs, serde_json::from_slice(&out.stdout)?, stderr))
}

/// The MiB a `coroner: fetched ...` line on stderr names.
fn fetched_mib(stderr: &str) -> f64 {
    coroner_samples::bench::fetched(stderr).map_or(f64::NAN, |(b, _)| b as f64 / 1048576.0)
}

fn run() -> Res<()> {
    let (mut n, mut looped, mut bucket) = (1000usize, 100usize, true);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--captures" => n = val()?.parse::<usize>()?.max(1),
            "--loop" => looped = val()?.parse::<usize>()?.max(1),
            "--no-bucket" => bucket = false,
            _ => return Err(format!("unknown argument {a}").into()),
        }
    }
    let looped = looped.min(n);
    let coroner = std::env::current_exe()?.with_file_name("coroner");
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let kinds = [
        "panic",
        "mce-fatal",
        "kvm-emulation-failure",
        "healthy-stopped",
    ];
    let tmp = tempfile::Builder::new().prefix("bench-triage-").tempdir()?;
    let dir = tmp.path().join("captures");
    std::fs::create_dir(&dir)?;
    let mut bytes = 0u64;
    for i in 0..n {
        let kind = kinds[i % kinds.len()];
        let to = dir.join(format!("{kind}-{i:05}.core.zst"));
        bytes += std::fs::copy(samples.join(format!("{kind}.core.zst")), &to)?;
    }
    let (first, report) = triage(&coroner, &dir, &[])?;
    let (again, report2) = triage(&coroner, &dir, &[])?;
    if report2["signed_now"] != 0 {
        return Err(format!("the re-run signed {} captures again", report2["signed_now"]).into());
    }
    // One new capture among the signed ones.
    std::fs::copy(
        samples.join("panic.core.zst"),
        dir.join("panic-new.core.zst"),
    )?;
    let (one_new, report3) = triage(&coroner, &dir, &[])?;
    let t = Instant::now();
    for i in 0..looped {
        let kind = kinds[i % kinds.len()];
        let out = Command::new(&coroner)
            .arg("analyze")
            .arg(dir.join(format!("{kind}-{i:05}.core.zst")))
            .arg("--json")
            .output()?;
        if !out.status.success() {
            return Err("analyze failed".into());
        }
    }
    let per = t.elapsed().as_secs_f64() / looped as f64;
    println!(
        "\n== {n} captures ({:.0} MiB; copies of the 4 bundled samples), {} groups",
        bytes as f64 / (1 << 20) as f64,
        report["groups"].as_array().map_or(0, Vec::len)
    );
    println!("{:<58} {:>9} {:>12}", "method", "time s", "vs re-run");
    let row = |what: &str, secs: f64| {
        println!("{what:<58} {secs:>9.2} {:>11.1}x", secs / again);
    };
    row(
        &format!(
            "coroner triage, first run ({} signed)",
            report["signed_now"]
        ),
        first,
    );
    row("coroner triage, re-run (every signature stored)", again);
    row(
        &format!(
            "coroner triage, one new capture ({} signed)",
            report3["signed_now"]
        ),
        one_new,
    );
    row(
        &format!("coroner analyze --json per capture, {looped} timed x{n}/{looped}"),
        per * n as f64,
    );
    if bucket {
        in_bucket(&coroner, &dir, bytes)?;
    }
    Ok(())
}

/// The captures of `dir` put in a bucket and triaged there.
fn in_bucket(coroner: &Path, dir: &Path, bytes: u64) -> Res<()> {
    let server = coroner_samples::s3_server::S3Server::start("fleet")?;
    let env = server.env();
    let settings: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let store = coroner_objstore::Store::with_settings("fleet", &settings)?;
    let t = Instant::now();
    let mut n = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !name.ends_with(".core.zst") {
            continue;
        }
        // Spread over 10 hosts' prefixes, as a fleet's watchers would write them.
        store.write_small(
            &format!("fleet/host{}/{name}", n % 10),
            std::fs::read(&path)?,
        )?;
        n += 1;
    }
    let upload = t.elapsed().as_secs_f64();
    let url = Path::new("s3://fleet/fleet/");
    let (first, r1, e1) = triage_env(coroner, url, &[], &env)?;
    let (again, r2, e2) = triage_env(coroner, url, &[], &env)?;
    if r2["signed_now"] != 0 {
        return Err(format!(
            "the bucket re-run signed {} captures again",
            r2["signed_now"]
        )
        .into());
    }
    println!(
        "\n== the same {n} captures in a bucket (moto on loopback; put in {upload:.1} s), {} groups",
        r1["groups"].as_array().map_or(0, Vec::len)
    );
    println!("{:<58} {:>9} {:>12}", "method", "time s", "fetched MiB");
    println!(
        "{:<58} {first:>9.2} {:>12.1}",
        format!(
            "coroner triage s3://, first run ({} signed)",
            r1["signed_now"]
        ),
        fetched_mib(&e1)
    );
    println!(
        "{:<58} {again:>9.2} {:>12.1}",
        "coroner triage s3://, re-run (every signature stored)",
        fetched_mib(&e2)
    );
    println!("(the captures hold {:.0} MiB)", bytes as f64 / 1048576.0);
    Ok(())
}
