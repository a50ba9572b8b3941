//! Which guests to watch: `--qmp [NAME=]SOCK` arguments and the sockets in `--qmp-dir`.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use coroner_capture::{safe_name, QmpAddress};

/// A guest to watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Its name in file names and announcements.
    pub name: String,
    /// Its monitor.
    pub address: QmpAddress,
}

/// The name a socket path gives: its file name without `.qmp`, `.sock` or `.socket`.
fn name_of_path(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = [".qmp", ".sock", ".socket"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))
        .unwrap_or(&file);
    safe_name(stem)
}

/// Parses `SOCK` or `NAME=SOCK`.
pub fn parse_target(arg: &str) -> Result<Target, String> {
    let (name, sock) = match arg.split_once('=') {
        Some((n, s))
            if !n.is_empty()
                && !s.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) =>
        {
            (Some(n.to_string()), s)
        }
        _ => (None, arg),
    };
    let address = QmpAddress::parse(sock).map_err(|e| e.to_string())?;
    let name = name.unwrap_or_else(|| match &address {
        QmpAddress::Unix(p) => name_of_path(p),
        QmpAddress::Tcp(a) => safe_name(&a.replace(':', "-")),
    });
    Ok(Target { name, address })
}

/// The unix sockets in `dir`, by name.
pub fn sockets_in(dir: &Path) -> std::io::Result<Vec<Target>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type().is_ok_and(|t| t.is_socket()) {
            let path: PathBuf = entry.path();
            found.push(Target {
                name: name_of_path(&path),
                address: QmpAddress::Unix(path),
            });
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = parse_target("/run/qemu/vm1.qmp").unwrap();
        assert_eq!(t.name, "vm1");
        assert_eq!(t.address, QmpAddress::Unix("/run/qemu/vm1.qmp".into()));
        let t = parse_target("db=/run/x=y.sock").unwrap();
        assert_eq!(t.name, "db");
        assert_eq!(t.address, QmpAddress::Unix("/run/x=y.sock".into()));
        let t = parse_target("/run/a=b.sock").unwrap();
        assert_eq!(t.name, "a_b");
        let t = parse_target("tcp:127.0.0.1:4444").unwrap();
        assert_eq!(t.name, "127.0.0.1-4444");
        // Without a socket after `=`, the whole argument is the path.
        assert_eq!(
            parse_target("vm=").unwrap().address,
            QmpAddress::Unix("vm=".into())
        );
        assert!(parse_target("tcp:host").is_err());
    }

    #[test]
    fn sockets_in_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let _a = std::os::unix::net::UnixListener::bind(dir.path().join("web.qmp")).unwrap();
        let _b = std::os::unix::net::UnixListener::bind(dir.path().join("db.sock")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        let names: Vec<String> = sockets_in(dir.path())
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(names, ["db", "web"]);
    }
}
