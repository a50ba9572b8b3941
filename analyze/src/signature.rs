//! Signing a capture for `triage`: its crash title from `analyze`'s report (so the two
//! always agree), with the guest, host and time it was captured.

use coroner_formats::Core;
use coroner_record::{CaptureInfo, Signature, SIGNATURE_SCHEMA};

use crate::report::Report;

/// The signature of the capture `core` was opened from, whose report is `report`;
/// `file` is the capture's size and modification time (nanoseconds) when read.
pub fn sign(core: &Core, report: &Report, file: (u64, u128), tool: &str) -> Signature {
    let meta = core.metadata.as_ref();
    let info = meta.and_then(|m| CaptureInfo::from_metadata(m).ok().flatten());
    Signature {
        schema: SIGNATURE_SCHEMA,
        tool: tool.to_string(),
        capture: core
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        capture_bytes: file.0,
        capture_mtime_ns: file.1,
        capture_etag: None,
        signature: Signature::key(report.title.as_deref(), report.run_state.as_deref()),
        title: report.title.clone(),
        verdict: report.verdict.clone(),
        run_state: report.run_state.clone(),
        guest: info.as_ref().and_then(guest_name),
        host: meta.and_then(|m| m.host.clone()),
        captured_unix: meta.map_or(0, |m| m.created_unix),
    }
}

/// The guest's name: `watch`'s name for it, the libvirt domain, else qemu's `-name`
/// (`guest=NAME,...` or `NAME`).
pub fn guest_name(info: &CaptureInfo) -> Option<String> {
    if let Some(g) = &info.guest {
        return Some(g.clone());
    }
    if let Some(l) = &info.libvirt {
        return Some(l.domain.clone());
    }
    let args = info.qemu_cmdline.as_ref()?;
    let value = args
        .iter()
        .position(|a| a == "-name")
        .and_then(|i| args.get(i + 1))?;
    let first = value
        .split(',')
        .find_map(|part| part.strip_prefix("guest="))
        .or_else(|| value.split(',').next().filter(|p| !p.contains('=')))?;
    Some(first.to_string()).filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_names() {
        let mut info = CaptureInfo::default();
        assert_eq!(guest_name(&info), None);
        for (args, want) in [
            (
                vec!["qemu", "-name", "guest=web1,debug-threads=on"],
                Some("web1"),
            ),
            (vec!["qemu", "-name", "db2"], Some("db2")),
            (vec!["qemu", "-name", "process=x"], None),
            (vec!["qemu", "-name"], None),
        ] {
            info.qemu_cmdline = Some(args.into_iter().map(String::from).collect());
            assert_eq!(guest_name(&info).as_deref(), want);
        }
        info.libvirt = Some(coroner_record::LibvirtRecord {
            domain: "vm9".into(),
            ..Default::default()
        });
        assert_eq!(guest_name(&info).as_deref(), Some("vm9"));
    }
}
