//! The one rule for "is this record of that guest": a capture's metadata and a watcher's
//! state file both name the qemu they saw by monitor address and, when it ran on this
//! host, by process id.

use coroner_record::CaptureInfo;

use crate::libvirt::Domain;
use crate::QmpAddress;

/// The guest a poller or watcher asks about, and its qemu's process id when known.
#[derive(Clone, Copy, Debug)]
pub(crate) enum GuestRef<'a> {
    /// A qemu by its monitor.
    Qmp(&'a QmpAddress, Option<u32>),
    /// A libvirt domain.
    Domain(&'a Domain, Option<u32>),
}

impl GuestRef<'_> {
    /// Whether the capture record `c` is of this guest: by qemu's process id when both
    /// sides know it, else by monitor address or by domain name and connection.
    pub(crate) fn matches(&self, c: &CaptureInfo) -> bool {
        match self {
            GuestRef::Qmp(address, pid) => same_guest(&c.qmp, c.qemu_pid, address, *pid),
            GuestRef::Domain(dom, pid) => match (c.qemu_pid, pid) {
                (Some(a), Some(b)) if c.libvirt.is_some() => a == *b,
                _ => c
                    .libvirt
                    .as_ref()
                    .is_some_and(|l| l.domain == dom.name && l.uri == dom.uri),
            },
        }
    }
}

/// Whether a record that names its qemu by monitor `record_qmp` (as written) and process
/// `record_pid` is of the qemu at `address` (process `pid`, when known). By process id
/// when both sides know it (a watcher and a poller use different monitors of one qemu);
/// else by monitor: unix socket paths compared after resolving symlinks and `..` (the
/// written path when a side does not resolve), TCP addresses as written.
pub fn same_guest(
    record_qmp: &str,
    record_pid: Option<u32>,
    address: &QmpAddress,
    pid: Option<u32>,
) -> bool {
    if let (Some(a), Some(b)) = (record_pid, pid) {
        return a == b;
    }
    match QmpAddress::parse(record_qmp) {
        Ok(QmpAddress::Unix(a)) => match address {
            QmpAddress::Unix(b) => {
                a == *b
                    || matches!(
                        (std::fs::canonicalize(&a), std::fs::canonicalize(b)),
                        (Ok(x), Ok(y)) if x == y
                    )
            }
            QmpAddress::Tcp(_) => false,
        },
        Ok(tcp) => tcp == *address,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_pid_then_by_resolved_socket_or_tcp_address() {
        let d = tempfile::tempdir().unwrap();
        let sock = d.path().join("vm.qmp");
        std::fs::write(&sock, "").unwrap();
        let link = d.path().join("link.qmp");
        std::os::unix::fs::symlink(&sock, &link).unwrap();
        let addr = QmpAddress::Unix(sock.clone());
        let written = sock.display().to_string();
        assert!(same_guest(&written, None, &addr, Some(7)));
        assert!(same_guest(&link.display().to_string(), None, &addr, None));
        assert!(same_guest(&format!("unix:{written}"), None, &addr, None));
        assert!(!same_guest("/elsewhere.qmp", None, &addr, None));
        // Process ids decide when both sides know them, whatever the monitor.
        assert!(same_guest("/elsewhere.qmp", Some(7), &addr, Some(7)));
        assert!(!same_guest(&written, Some(7), &addr, Some(8)));
        let tcp = QmpAddress::parse("tcp:10.0.0.1:4444").unwrap();
        assert!(same_guest("tcp:10.0.0.1:4444", None, &tcp, None));
        assert!(!same_guest("tcp:10.0.0.2:4444", None, &tcp, None));
        assert!(!same_guest(&written, None, &tcp, None));
    }
}
