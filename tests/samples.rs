//! Golden tests: the analyses of the bundled slim samples (`samples/captures`, made by
//! `make-samples`) give exactly the checked-in JSON.

use std::path::Path;

use crate::util::{coroner, Dir};

const SAMPLES: [&str; 4] = [
    "panic",
    "mce-fatal",
    "healthy-stopped",
    "kvm-emulation-failure",
];

#[test]
fn bundled_samples_analyze_as_recorded() {
    let dir = Dir::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/captures");
    for name in SAMPLES {
        let cap = root.join(format!("{name}.core.zst"));
        assert!(cap.exists(), "{} is missing", cap.display());
        let size = std::fs::metadata(&cap).unwrap().len();
        assert!(size < 2 << 20, "{name} is {size} bytes");
        for cmd in ["analyze", "mce", "exit"] {
            let expected: serde_json::Value = serde_json::from_slice(
                &std::fs::read(root.join(format!("{name}.{cmd}.json"))).unwrap(),
            )
            .unwrap();
            let r = coroner(dir.path(), &[cmd, cap.to_str().unwrap(), "--json"]);
            assert_eq!(
                r.json(),
                expected,
                "coroner {cmd} {name}: differs from samples/captures/{name}.{cmd}.json \
                 (re-create with target/release/make-samples if the change is intended)"
            );
        }
    }
}
