//! Finding the qemu process behind a monitor, when it runs on this host: its pid (from
//! the vCPU thread ids `query-cpus-fast` reports), command line, and log file.

use std::fs;
use std::path::{Path, PathBuf};

/// A qemu process on this host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalQemu {
    /// Process id.
    pub pid: u32,
    /// Command line.
    pub cmdline: Vec<String>,
    /// Where its stderr goes, when that is a regular file (libvirt's per-VM log).
    pub stderr_file: Option<PathBuf>,
}

fn tgid_of(proc_root: &Path, tid: u64) -> Option<u32> {
    let status = fs::read_to_string(proc_root.join(tid.to_string()).join("status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Finds the qemu process that owns every one of `thread_ids`. Returns `None` when qemu
/// is not on this host (a TCP monitor elsewhere) or the threads belong to different
/// processes, so an unrelated local process is never mistaken for qemu.
pub fn find(thread_ids: &[u64]) -> Option<LocalQemu> {
    find_in(Path::new("/proc"), thread_ids)
}

/// The local qemu process behind `qmp`, found from its vCPU thread ids.
pub fn find_for(qmp: &mut crate::Qmp) -> Option<LocalQemu> {
    let tids: Vec<u64> = qmp
        .execute("query-cpus-fast", None)
        .ok()?
        .as_array()?
        .iter()
        .filter_map(|c| c["thread-id"].as_u64())
        .collect();
    find(&tids)
}

fn find_in(proc_root: &Path, thread_ids: &[u64]) -> Option<LocalQemu> {
    let first = *thread_ids.first()?;
    let pid = tgid_of(proc_root, first)?;
    if thread_ids
        .iter()
        .any(|&t| tgid_of(proc_root, t) != Some(pid))
    {
        return None;
    }
    let dir = proc_root.join(pid.to_string());
    let raw = fs::read(dir.join("cmdline")).ok()?;
    let cmdline: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let exe = cmdline.first().map(|a| a.rsplit('/').next().unwrap_or(a))?;
    if !exe.contains("qemu") && !exe.contains("kvm") {
        return None;
    }
    let stderr_file = fs::read_link(dir.join("fd/2"))
        .ok()
        .filter(|p| p.is_absolute() && fs::metadata(p).is_ok_and(|m| m.is_file()));
    Some(LocalQemu {
        pid,
        cmdline,
        stderr_file,
    })
}

/// The host CPU's vendor string from `/proc/cpuinfo` (`vendor_id`).
/// The libvirt domain a qemu command line belongs to: libvirt names the guest with
/// `-name guest=NAME,...` and keeps its files under `.../libvirt/qemu/domain-ID-NAME/`.
pub fn libvirt_domain(cmdline: &[String]) -> Option<String> {
    if !cmdline.iter().any(|a| a.contains("libvirt/qemu/domain-")) {
        return None;
    }
    let at = cmdline.iter().position(|a| a == "-name")?;
    let value = cmdline.get(at + 1)?;
    let name = value
        .split(',')
        .find_map(|p| p.strip_prefix("guest="))
        .unwrap_or(value);
    Some(name.to_string())
}

pub fn host_cpu_vendor() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("vendor_id"))
        .and_then(|rest| rest.split(':').nth(1))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty() && v.len() < 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_proc(dir: &Path, pid: u32, tids: &[u64], exe: &str) {
        for &t in tids {
            let d = dir.join(t.to_string());
            fs::create_dir_all(&d).unwrap();
            fs::write(
                d.join("status"),
                format!("Name:\tCPU 0/KVM\nTgid:\t{pid}\n"),
            )
            .unwrap();
        }
        let d = dir.join(pid.to_string());
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("cmdline"), format!("{exe}\0-name\0vm1\0")).unwrap();
    }

    #[test]
    fn finds_qemu_from_vcpu_threads_only_when_consistent() {
        let t = tempfile::tempdir().unwrap();
        fake_proc(t.path(), 100, &[101, 102], "/usr/bin/qemu-system-x86_64");
        let q = find_in(t.path(), &[101, 102]).unwrap();
        assert_eq!(q.pid, 100);
        assert_eq!(q.cmdline, ["/usr/bin/qemu-system-x86_64", "-name", "vm1"]);
        fake_proc(t.path(), 200, &[201], "/usr/bin/bash");
        assert_eq!(find_in(t.path(), &[201]), None, "not qemu");
        assert_eq!(find_in(t.path(), &[101, 201]), None, "two processes");
        assert_eq!(find_in(t.path(), &[999]), None, "not on this host");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod libvirt_tests {
    use super::*;

    #[test]
    fn libvirt_domains_by_their_command_line() {
        let argv = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let lv = argv(
            "/usr/bin/qemu-system-x86_64 -name guest=vm1,debug-threads=on -S -object \
             {\"file\":\"/var/lib/libvirt/qemu/domain-8-vm1/master-key.aes\"}",
        );
        assert_eq!(libvirt_domain(&lv).as_deref(), Some("vm1"));
        let plain = argv("qemu-system-x86_64 -name vm1 -qmp unix:/run/coroner/vm1.qmp");
        assert_eq!(libvirt_domain(&plain), None);
    }
}
