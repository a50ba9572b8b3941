//! Writing captures to object storage (moto's S3 server on loopback): `capture -o s3://`
//! streams the container into a multipart upload whose object holds exactly the content
//! of a local capture of the same guest; a capture whose connection is cut mid-upload (a
//! proxy in front of the server) or whose qemu is killed mid-dump leaves no object under
//! its key; `watch --dir s3://` of two hosts puts each capture under its host's prefix,
//! with a signature object beside it and a local receipt that `status` reads; the
//! analyses, the TUI, `export` and `compress` read the bucket in place as they read local
//! files.

use std::time::{Duration, Instant};

use coroner_objstore::Store;
use coroner_samples::cutting_proxy::CuttingProxy;
use coroner_samples::kit;
use coroner_samples::s3_server::{self, S3Server};

use crate::util::{
    big_stopped_guest, coroner, coroner_env, kill_and_wait_dead, panicked_filled_guest, signal,
    spawn_coroner_env, zstd_decompress, Dir,
};

fn available(test: &str) -> bool {
    kit::available_or_skip(test) && s3_server::available_or_skip(test)
}

/// A client of `server`'s bucket, as the tests' own independent reader.
fn store_of(server: &S3Server) -> Store {
    let env = server.env();
    let settings: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Store::with_settings(&server.bucket, &settings).unwrap()
}

/// Downloads the object `key` into `path`.
fn download(store: &Store, key: &str, path: &std::path::Path) {
    let size = store.size(key).unwrap();
    let mut bytes = Vec::with_capacity(size as usize);
    let mut at = 0;
    while at < size {
        let end = (at + (16 << 20)).min(size);
        bytes.extend(store.read_range(key, at..end).unwrap());
        at = end;
    }
    std::fs::write(path, bytes).unwrap();
}

/// The objects under `prefix`, by key.
fn keys(store: &Store, prefix: &str) -> Vec<String> {
    let mut k: Vec<String> = store
        .list(prefix)
        .unwrap()
        .into_iter()
        .map(|l| l.key)
        .collect();
    k.sort();
    k
}

#[test]
fn captures_and_watchers_upload_into_a_bucket() {
    if !available("captures_and_watchers_upload_into_a_bucket") {
        return;
    }
    let dir = Dir::new();
    let server = S3Server::start("caps").unwrap();
    let env = server.env();
    let store = store_of(&server);
    let mut guest = panicked_filled_guest();
    let sock = guest.tool_socket().display().to_string();

    // The same guest captured to a file and to the bucket: the same content.
    let local = coroner(
        dir.path(),
        &["capture", "--qmp", &sock, "-o", "vm.core.zst", "--json"],
    );
    local.expect_code(0);
    let url = "s3://caps/single/vm.core.zst";
    let up = coroner_env(
        dir.path(),
        &["capture", "--qmp", &sock, "-o", url, "--json"],
        &env,
    );
    up.expect_code(0);
    let (l, u) = (local.json(), up.json());
    assert_eq!(u["output"], url);
    assert_eq!(u["content_frames_blake3"], l["content_frames_blake3"]);
    assert_eq!(
        store.size("single/vm.core.zst").unwrap(),
        u["compressed_size"].as_u64().unwrap()
    );
    assert!(
        u["compressed_size"].as_u64().unwrap() > 3 * coroner_objstore::MIN_PART_BYTES as u64,
        "the capture fits in one part: {u}"
    );
    download(&store, "single/vm.core.zst", &dir.join("got.core.zst"));
    zstd_decompress(dir.path(), "got.core.zst", "got.elf");
    zstd_decompress(dir.path(), "vm.core.zst", "vm.elf");
    assert!(
        std::fs::read(dir.join("got.elf")).unwrap() == std::fs::read(dir.join("vm.elf")).unwrap(),
        "the object's content differs from the local capture's"
    );
    // export reads the object by ranges and checks it against its recorded digest.
    let e = coroner_env(
        dir.path(),
        &["export", url, "-o", "export.elf", "--json"],
        &env,
    );
    e.expect_code(0);
    assert_eq!(e.json()["verified"], true);
    assert!(
        std::fs::read(dir.join("export.elf")).unwrap()
            == std::fs::read(dir.join("vm.elf")).unwrap(),
        "export from the bucket differs"
    );
    for f in ["got.elf", "vm.elf", "export.elf"] {
        std::fs::remove_file(dir.join(f)).unwrap();
    }
    // compress reads a dump in the bucket in place: qemu's kdump-zlib file of the same
    // guest gives the container `compress` makes of the local file.
    guest.dump(&dir.join("vm.kdump"), "kdump-zlib").unwrap();
    store
        .write_small(
            "dumps/vm.kdump",
            std::fs::read(dir.join("vm.kdump")).unwrap(),
        )
        .unwrap();
    let c = coroner_env(
        dir.path(),
        &[
            "compress",
            "s3://caps/dumps/vm.kdump",
            "-o",
            "k3.core.zst",
            "--json",
        ],
        &env,
    );
    c.expect_code(0);
    let l = coroner(
        dir.path(),
        &["compress", "vm.kdump", "-o", "kl.core.zst", "--json"],
    );
    l.expect_code(0);
    assert_eq!(
        c.json()["content_frames_blake3"],
        l.json()["content_frames_blake3"]
    );
    assert_eq!(
        coroner(dir.path(), &["dmesg", "k3.core.zst"]).stdout(),
        coroner(dir.path(), &["dmesg", "vm.core.zst"]).stdout()
    );
    for f in ["vm.kdump", "k3.core.zst", "kl.core.zst"] {
        std::fs::remove_file(dir.join(f)).unwrap();
    }
    // And a plain ELF (the panic sample's, exported), byte for byte.
    let sample =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/captures/panic.core.zst");
    coroner(
        dir.path(),
        &["export", sample.to_str().unwrap(), "-o", "sample.elf"],
    )
    .expect_code(0);
    store
        .write_small(
            "dumps/sample.elf",
            std::fs::read(dir.join("sample.elf")).unwrap(),
        )
        .unwrap();
    coroner_env(
        dir.path(),
        &[
            "compress",
            "s3://caps/dumps/sample.elf",
            "-o",
            "sample.core.zst",
        ],
        &env,
    )
    .expect_code(0);
    zstd_decompress(dir.path(), "sample.core.zst", "sample2.elf");
    assert!(
        std::fs::read(dir.join("sample2.elf")).unwrap()
            == std::fs::read(dir.join("sample.elf")).unwrap(),
        "compress from the bucket changed the ELF"
    );
    assert_eq!(server.pending_uploads().unwrap(), Vec::<String>::new());
    coroner_env(dir.path(), &["verify", url], &env).expect_code(0);

    // The analyses and the TUI from the bucket, as from a local copy of the object.
    for args in [
        &["analyze", "--json"][..],
        &["dmesg"],
        &["tui", "--json", "--size", "100x30"],
    ] {
        let l = coroner(dir.path(), &[args, &["got.core.zst"]].concat());
        let r = coroner_env(dir.path(), &[args, &[url]].concat(), &env);
        r.expect_code(l.code());
        if args[0] == "tui" {
            // The rows that name the capture differ; every other row is the same.
            let rows = |v: serde_json::Value| -> Vec<Vec<String>> {
                v["screens"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| {
                        s["rows"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|r| r.as_str().unwrap().to_string())
                            .filter(|r| !r.contains(url) && !r.contains("got.core.zst"))
                            .collect()
                    })
                    .collect()
            };
            let (remote, local) = (rows(r.json()), rows(l.json()));
            assert!(
                remote.len() >= 4 && remote == local,
                "{remote:#?}\n{local:#?}"
            );
        } else {
            assert_eq!(r.stdout(), l.stdout(), "{args:?}");
        }
        assert!(
            r.stderr().contains("coroner: fetched "),
            "{args:?}: {}",
            r.stderr()
        );
    }

    // Usage: an existing object, a kept partial, a prefix for an object.
    let again = coroner_env(dir.path(), &["capture", "--qmp", &sock, "-o", url], &env);
    again.expect_code(4);
    assert!(again.stderr().contains("exists"), "{}", again.stderr());
    for (args, code) in [
        (
            vec!["-o", "s3://caps/single/p.core.zst", "--keep-partial"],
            2,
        ),
        (vec!["-o", "s3://caps/single/"], 2),
    ] {
        let r = coroner_env(
            dir.path(),
            &[&["capture", "--qmp", &sock][..], &args].concat(),
            &env,
        );
        r.expect_code(code);
    }

    // The line cut after 12 MiB, within the second part: no object under the key, and
    // the guest frozen as it was.
    let proxy = CuttingProxy::start(server.address(), 12 << 20).unwrap();
    let mut cut_env = env.clone();
    for (k, v) in cut_env.iter_mut() {
        if *k == "AWS_ENDPOINT_URL" {
            *v = proxy.endpoint.clone();
        }
    }
    let cut_url = "s3://caps/single/cut.core.zst";
    let t = Instant::now();
    let cut = coroner_env(
        dir.path(),
        &["capture", "--qmp", &sock, "-o", cut_url],
        &cut_env,
    );
    eprintln!(
        "cut capture ended in {:.1} s: {}",
        t.elapsed().as_secs_f64(),
        cut.stderr()
    );
    cut.expect_code(4);
    assert!(proxy.was_cut(), "the proxy passed {} bytes", proxy.sent());
    assert!(cut.stderr().contains(cut_url), "{}", cut.stderr());
    assert!(!store.exists("single/cut.core.zst").unwrap());
    // The upload could not be aborted through the dead line: it is left invisible, and
    // coroner says so.
    let pending = server.pending_uploads().unwrap();
    for k in &pending {
        assert_eq!(k, "single/cut.core.zst");
    }
    assert_eq!(
        cut.stderr().contains("could not be aborted"),
        !pending.is_empty(),
        "{}",
        cut.stderr()
    );
    assert_eq!(guest.qmp.run_state().unwrap(), "guest-panicked");
    drop(proxy);

    // Watchers of two hosts into one bucket.
    let watch = |host: &str, state: &str| {
        coroner_env(
            dir.path(),
            &[
                "watch",
                "--qmp",
                &format!("vm={sock}"),
                "--dir",
                "s3://caps/fleet",
                "--state-dir",
                state,
                "--host",
                host,
                "--once",
                "--json",
            ],
            &env,
        )
    };
    let w = watch("h1", "st1");
    w.expect_code(0);
    let captured: Vec<serde_json::Value> = w
        .stdout()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|n| n["event"] == "captured")
        .collect();
    assert_eq!(captured.len(), 1, "{}", w.stdout());
    let key1 = captured[0]["capture"]
        .as_str()
        .unwrap()
        .strip_prefix("s3://caps/")
        .unwrap()
        .to_string();
    assert!(
        key1.starts_with("fleet/h1/vm-") && key1.ends_with("-guest-panicked.core.zst"),
        "{key1}"
    );
    let name1 = key1.rsplit('/').next().unwrap();
    // The receipt, private, and the signature object beside the capture.
    let receipt = dir.join("st1").join(format!("{name1}.receipt.json"));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&receipt).unwrap().permissions(),
    ) & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(
        keys(&store, "fleet/h1/"),
        vec![key1.clone(), format!("{key1}.sig.json")]
    );
    // status reads the receipt: this freeze is captured, in the bucket.
    let s = coroner(
        dir.path(),
        &["status", "--qmp", &sock, "--dir", "st1", "--json"],
    );
    assert_eq!(s.json()["health"], "frozen-captured", "{}", s.stdout());
    assert_eq!(s.json()["capture"], format!("s3://caps/{key1}"));
    coroner(
        dir.path(),
        &["status", "--qmp", &sock, "--dir", "s3://caps/fleet/"],
    )
    .expect_code(2);
    // The same host again: already captured, nothing uploaded.
    watch("h1", "st1").expect_code(0);
    assert_eq!(keys(&store, "fleet/h1/").len(), 2);
    // A second host captures under its own prefix.
    watch("h2", "st2").expect_code(0);
    let h2 = keys(&store, "fleet/h2/");
    assert_eq!(h2.len(), 2, "{h2:?}");
    // Triage of the fleet reads only the signature objects the watchers wrote.
    let r = coroner_env(dir.path(), &["triage", "s3://caps/fleet/", "--json"], &env);
    r.expect_code(0);
    let j = r.json();
    assert_eq!(
        (j["captures"].as_u64(), j["signed_now"].as_u64()),
        (Some(2), Some(0)),
        "{j:#}"
    );
    assert_eq!(j["groups"].as_array().unwrap().len(), 1, "{j:#}");
    assert_eq!(j["groups"][0]["count"], 2);

    // Usage: an s3:// --dir needs a local state directory and cannot keep partials.
    for (to, extra) in [
        ("s3://caps/fleet/", &[][..]),
        (
            "s3://caps/fleet/",
            &["--state-dir", "st3", "--keep-partial"],
        ),
        ("local", &["--state-dir", "st3"]),
    ] {
        let r = coroner_env(
            dir.path(),
            &[&["watch", "--qmp", &sock, "--dir", to, "--once"][..], extra].concat(),
            &env,
        );
        r.expect_code(2);
    }
    assert_eq!(guest.qmp.run_state().unwrap(), "guest-panicked");
}

#[test]
fn qemu_killed_mid_upload_leaves_no_object() {
    if !available("qemu_killed_mid_upload_leaves_no_object") {
        return;
    }
    let dir = Dir::new();
    let server = S3Server::start("caps").unwrap();
    let env = server.env();
    let guest = big_stopped_guest();
    let sock = guest.tool_socket().display().to_string();
    let url = "s3://caps/killed/vm.core.zst";
    let child = spawn_coroner_env(dir.path(), &["capture", "--qmp", &sock, "-o", url], &env);
    // Held once its upload exists, so that qemu blocks on the full pipe; then qemu dies.
    let t = Instant::now();
    while !server
        .pending_uploads()
        .unwrap()
        .iter()
        .any(|k| k == "killed/vm.core.zst")
    {
        assert!(t.elapsed() < Duration::from_secs(60), "no upload started");
        std::thread::sleep(Duration::from_millis(5));
    }
    signal(child.id(), "-STOP");
    kill_and_wait_dead(guest.pid());
    signal(child.id(), "-CONT");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(stderr.contains("was not written"), "{stderr}");
    let store = store_of(&server);
    assert!(!store.exists("killed/vm.core.zst").unwrap());
    assert_eq!(
        server.pending_uploads().unwrap(),
        Vec::<String>::new(),
        "the upload was not aborted"
    );
}
