//! Reading captures from object storage: a kit guest's capture put in a real
//! S3-compatible server (moto's, on loopback) answers `analyze`, `dmesg`, `mce`, `ps`,
//! `modules` and `bt` from `s3://` exactly as the local file does, by ranged reads of a
//! small part of it, with what was fetched said on stderr; a missing object, a bad URL
//! and missing credentials are clear errors.

use coroner_objstore::Store;
use coroner_samples::kit;
use coroner_samples::s3_server::{self, S3Server};

use crate::util::{coroner, coroner_env, panicked_filled_guest, Dir};

/// The bytes `coroner: fetched N in M request(s) from URL` names, from stderr.
fn fetched(stderr: &str) -> u64 {
    coroner_samples::bench::fetched(stderr)
        .unwrap_or_else(|| panic!("no fetched line: {stderr}"))
        .0
}

#[test]
fn analyses_read_a_capture_from_object_storage_by_ranged_reads() {
    if !kit::available_or_skip("analyses_read_a_capture_from_object_storage_by_ranged_reads")
        || !s3_server::available_or_skip(
            "analyses_read_a_capture_from_object_storage_by_ranged_reads",
        )
    {
        return;
    }
    let dir = Dir::new();
    let server = S3Server::start("caps").unwrap();
    let env = server.env();
    let guest = panicked_filled_guest();
    let sock = guest.tool_socket().display().to_string();
    coroner(
        dir.path(),
        &["capture", "--qmp", &sock, "-o", "vm.core.zst"],
    )
    .expect_code(0);
    let bytes = std::fs::read(dir.join("vm.core.zst")).unwrap();
    let size = bytes.len() as u64;
    let settings: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Store::with_settings("caps", &settings)
        .unwrap()
        .write_small("host1/vm.core.zst", bytes)
        .unwrap();
    let url = "s3://caps/host1/vm.core.zst";
    for args in [
        &["analyze", "--json"][..],
        &["dmesg"],
        &["mce", "--json"],
        &["ps", "--json"],
        &["modules", "--json"],
        &["bt", "--all", "--json"],
    ] {
        let local = coroner(dir.path(), &[args, &["vm.core.zst"]].concat());
        let remote = coroner_env(dir.path(), &[args, &[url]].concat(), &env);
        remote.expect_code(local.code());
        assert_eq!(remote.stdout(), local.stdout(), "{args:?}");
        let got = fetched(&remote.stderr());
        eprintln!("{args:?}: fetched {got} of {size} bytes");
        assert!(
            got > 0 && got < size / 4,
            "{args:?} fetched {got} of {size} bytes: {}",
            remote.stderr()
        );
    }
    // verify checks every frame of the object; slim makes a local slim capture of it.
    let v = coroner_env(dir.path(), &["verify", url, "--json"], &env);
    v.expect_code(0);
    assert_eq!(v.json()["files"][0]["verdict"], "ok", "{}", v.stdout());
    coroner_env(dir.path(), &["slim", url, "-o", "slim.core.zst"], &env).expect_code(0);
    assert_eq!(
        coroner(dir.path(), &["dmesg", "slim.core.zst"]).stdout(),
        coroner(dir.path(), &["dmesg", "vm.core.zst"]).stdout()
    );
    // inspect names the object.
    let i = coroner_env(dir.path(), &["inspect", url], &env);
    i.expect_code(0);
    assert!(i.stdout().contains(url), "{}", i.stdout());

    // Triage of a prefix: the bundled samples beside the kit's capture, signed by ranged
    // reads, signature objects written beside them, and a re-run that reads only those.
    let store = Store::with_settings("caps", &settings).unwrap();
    let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/captures");
    let mut total = size;
    for name in [
        "panic",
        "mce-fatal",
        "kvm-emulation-failure",
        "healthy-stopped",
    ] {
        let b = std::fs::read(samples.join(format!("{name}.core.zst"))).unwrap();
        total += b.len() as u64;
        store
            .write_small(&format!("host2/{name}.core.zst"), b)
            .unwrap();
    }
    let r = coroner_env(dir.path(), &["triage", "s3://caps/", "--json"], &env);
    r.expect_code(0);
    let j = r.json();
    assert_eq!(
        (j["captures"].as_u64(), j["signed_now"].as_u64()),
        (Some(5), Some(5)),
        "{j:#}"
    );
    let groups = j["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 4, "{j:#}");
    assert_eq!(
        groups[0]["signature"],
        "kernel panic: sysrq triggered crash in sysrq_handle_crash"
    );
    assert_eq!(groups[0]["count"], 2);
    assert!(groups[0]["example"]
        .as_str()
        .unwrap()
        .starts_with("s3://caps/"));
    let got = fetched(&r.stderr());
    assert!(got < total / 2, "triage fetched {got} of {total} bytes");
    let sigs = store
        .list("")
        .unwrap()
        .into_iter()
        .filter(|l| l.key.ends_with(".core.zst.sig.json"))
        .count();
    assert_eq!(sigs, 5);
    let r = coroner_env(dir.path(), &["triage", "s3://caps/", "--json"], &env);
    r.expect_code(0);
    let again = r.json();
    assert_eq!(again["signed_now"], 0, "{again:#}");
    assert_eq!(again["groups"], j["groups"]);
    // A prefix of its own: only host2's.
    let r = coroner_env(dir.path(), &["triage", "s3://caps/host2/", "--json"], &env);
    assert_eq!(r.json()["captures"], 4);
    // Overlapping prefixes count each capture once.
    let r = coroner_env(
        dir.path(),
        &["triage", "s3://caps/", "s3://caps/host2/", "--json"],
        &env,
    );
    assert_eq!(r.json()["captures"], 5);

    // What cannot be read is said, with distinct exit codes.
    let r = coroner_env(
        dir.path(),
        &["dmesg", "s3://caps/host1/none.core.zst"],
        &env,
    );
    r.expect_code(3);
    assert!(r.stderr().contains("not found"), "{}", r.stderr());
    let r = coroner_env(dir.path(), &["dmesg", "s3://Caps/x"], &env);
    r.expect_code(2);
    // A server that is not there: an error naming the object.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let elsewhere: Vec<(&str, String)> = env
        .iter()
        .map(|(k, v)| match *k {
            "AWS_ENDPOINT_URL" => (*k, format!("http://127.0.0.1:{port}")),
            _ => (*k, v.clone()),
        })
        .collect();
    let r = coroner_env(dir.path(), &["dmesg", url], &elsewhere);
    r.expect_code(3);
    assert!(r.stderr().contains(url), "{}", r.stderr());
}
