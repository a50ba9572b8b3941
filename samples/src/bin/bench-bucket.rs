//! `bench-bucket`: captures in object storage beside captures in files, on one frozen kit
//! guest (2 GiB, `coroner.fill=450` by default) and moto's S3 server on loopback:
//! `coroner capture` into a file and into `s3://` (a multipart upload as qemu writes),
//! then `analyze`, `dmesg`, `bt --all` and `mce` from the local file and from the object
//! (time, and the bytes fetched beside the object's size). The alternatives in the same
//! run: capturing to a file and then uploading it, and downloading the whole object
//! before analysing it locally. Medians of `--runs`. Not a test. moto is one Python
//! process that copies objects in memory, so the bucket's figures are those of a slow
//! server on a fast link.
//!
//! Usage: cargo build --release --workspace &&
//!        target/release/bench-bucket [--mem MiB] [--fill MiB] [--runs N]

use std::process::Command;
use std::time::Instant;

use coroner_samples::kit::{Guest, GuestOptions, Scenario};
use coroner_samples::s3_server::S3Server;

use coroner_samples::bench::{fetched, median};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() {
    if let Err(e) = run() {
        eprintln!("bench-bucket: {e}");
        std::process::exit(1);
    }
}

/// Runs coroner with `args` and `env`: (seconds, stdout, stderr), failing on a non-zero exit.
fn timed(
    coroner: &std::path::Path,
    args: &[&str],
    env: &[(&'static str, String)],
) -> Res<(f64, String, String)> {
    let t = Instant::now();
    let out = Command::new(coroner)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()?;
    let secs = t.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(format!("coroner {}: {stderr}", args.join(" ")).into());
    }
    Ok((
        secs,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    ))
}

fn run() -> Res<()> {
    let (mut mem, mut fill, mut runs) = (2048u32, 450u32, 3usize);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--mem" => mem = val()?.parse()?,
            "--fill" => fill = val()?.parse()?,
            "--runs" => runs = val()?.parse::<usize>()?.max(1),
            _ => return Err(format!("unknown argument {a}").into()),
        }
    }
    let coroner = std::env::current_exe()?.with_file_name("coroner");
    let server = S3Server::start("bench")?;
    let env = server.env();
    let mut guest = Guest::boot(&GuestOptions {
        mem_mib: mem,
        append: format!("coroner.fill={fill}"),
        ..GuestOptions::default()
    })?;
    guest.freeze(Scenario::Panic)?;
    let sock = guest.tool_socket().display().to_string();
    let tmp = tempfile::Builder::new().prefix("bench-bucket-").tempdir()?;
    let local = tmp.path().join("vm.core.zst");
    let local_s = local.display().to_string();
    let url = "s3://bench/host1/vm.core.zst";

    let settings: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let store = std::sync::Arc::new(coroner_objstore::Store::with_settings("bench", &settings)?);
    let (mut to_file, mut to_bucket, mut then_up) = (Vec::new(), Vec::new(), Vec::new());
    let (mut rss_file, mut rss_bucket) = (0u64, 0u64);
    let rss = |out: &str| -> u64 {
        serde_json::from_str::<serde_json::Value>(out)
            .ok()
            .and_then(|j| j["peak_rss_bytes"].as_u64())
            .unwrap_or(0)
    };
    let mut size = 0u64;
    for _ in 0..runs {
        let (s, out, _) = timed(
            &coroner,
            &[
                "capture", "--qmp", &sock, "-o", &local_s, "--force", "--json",
            ],
            &[],
        )?;
        to_file.push(s);
        rss_file = rss_file.max(rss(&out));
        size = serde_json::from_str::<serde_json::Value>(&out)?["compressed_size"]
            .as_u64()
            .unwrap_or(0);
        let (s, out, _) = timed(
            &coroner,
            &["capture", "--qmp", &sock, "-o", url, "--force", "--json"],
            &env,
        )?;
        to_bucket.push(s);
        rss_bucket = rss_bucket.max(rss(&out));
        // The alternative: the file, uploaded once it is complete.
        let t = Instant::now();
        let bytes = std::fs::read(&local)?;
        let mut up = coroner_objstore::Upload::start(
            store.clone(),
            "host1/copy.core.zst",
            Some(bytes.len() as u64),
        )?;
        for chunk in bytes.chunks(1 << 20) {
            coroner_formats::Destination::append(&mut up, chunk)?;
        }
        coroner_formats::Destination::commit(Box::new(up))?;
        then_up.push(t.elapsed().as_secs_f64());
    }
    println!(
        "\n== a {mem} MiB guest (coroner.fill={fill}), capture of {:.0} MiB; medians of {runs}",
        size as f64 / 1048576.0
    );
    println!(
        "{:<44} {:>10} {:>10} {:>9}",
        "capture", "file s", "bucket s", "ratio"
    );
    let (f, b, u) = (median(to_file), median(to_bucket), median(then_up));
    println!(
        "{:<44} {f:>10.2} {b:>10.2} {:>8.2}x",
        "coroner capture -o FILE | -o s3://",
        b / f
    );
    println!(
        "{:<44} {:>10.0} {:>10.0}",
        "  peak RSS of coroner, MiB",
        rss_file as f64 / 1048576.0,
        rss_bucket as f64 / 1048576.0
    );
    println!(
        "{:<44} {:>10} {:>10.2} {:>8.2}x",
        "capture -o FILE, then upload the file",
        "",
        f + u,
        (f + u) / f
    );

    // The alternative to ranged reads: fetch the whole object, then analyse the file.
    let mut whole = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let mut at = 0;
        let mut copy = Vec::with_capacity(size as usize);
        while at < size {
            let end = (at + (64 << 20)).min(size);
            copy.extend(store.read_range("host1/vm.core.zst", at..end)?);
            at = end;
        }
        std::fs::write(tmp.path().join("fetched.core.zst"), copy)?;
        whole.push(t.elapsed().as_secs_f64());
    }
    let whole = median(whole);
    // What one ranged GET costs this server: of the capture, and of a 1 MiB object.
    store.write_small("host1/small", vec![1u8; 1 << 20])?;
    let one_get = |key: &str| -> Res<f64> {
        let mut v = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            store.read_range(key, 4096..4096 + (256 << 10))?;
            v.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        Ok(median(v))
    };
    println!(
        "\none ranged GET of 256 KiB: {:.1} ms from the capture's object, {:.1} ms from a 1 MiB object (the server's cost per request grows with the object)",
        one_get("host1/vm.core.zst")?,
        one_get("host1/small")?
    );
    println!(
        "\n{:<22} {:>8} {:>9} {:>8} {:>12} {:>9} {:>10} {:>16}",
        "analysis",
        "file s",
        "bucket s",
        "ratio",
        "fetched MiB",
        "requests",
        "of object",
        "download+file s"
    );
    for cmd in [
        &["analyze", "--json"][..],
        &["dmesg"],
        &["bt", "--all", "--json"],
        &["mce", "--json"],
    ] {
        let (mut lt, mut rt) = (Vec::new(), Vec::new());
        let mut got = (0, 0);
        for _ in 0..runs {
            let (s, lout, _) = timed(&coroner, &[cmd, &[local_s.as_str()]].concat(), &[])?;
            lt.push(s);
            let (s, rout, err) = timed(&coroner, &[cmd, &[url]].concat(), &env)?;
            rt.push(s);
            if lout != rout {
                return Err(format!("{cmd:?}: the object's answer differs from the file's").into());
            }
            got = fetched(&err).ok_or(format!("no fetched line: {err}"))?;
        }
        let (l, r) = (median(lt), median(rt));
        println!(
            "{:<22} {l:>8.2} {r:>9.2} {:>7.1}x {:>12.1} {:>9} {:>9.1}% {:>16.2}",
            cmd.join(" "),
            r / l,
            got.0 as f64 / 1048576.0,
            got.1,
            100.0 * got.0 as f64 / size.max(1) as f64,
            whole + l
        );
    }
    Ok(())
}
