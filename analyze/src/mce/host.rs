//! The host's side of a machine check: qemu's `MEMORY_FAILURE` events (in the capture
//! metadata, from QMP or as libvirt's `memory-failure` events) and the lines qemu prints when the host kernel reports a memory error in guest
//! RAM (SIGBUS `BUS_MCEERR_AR`/`AO`) or when an injection is refused.

use coroner_record::CaptureInfo;
use serde::Serialize;

/// One `MEMORY_FAILURE` event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostEvent {
    /// Host wall-clock time of the event, microseconds since the epoch.
    pub time_us: Option<u64>,
    /// `hypervisor` (qemu's own memory) or `guest`.
    pub recipient: String,
    /// `ignore`, `inject`, `fatal` or `reset`.
    pub action: String,
    /// The error needs action now (`BUS_MCEERR_AR` or an AR injection).
    pub action_required: bool,
    /// The guest was already handling a machine check.
    pub recursive: bool,
}

/// What a qemu log line about a memory error says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostLineKind {
    /// The host reported a memory error in guest RAM; qemu injected a machine check.
    GuestRamError,
    /// The host reported a memory error in qemu's own memory (not guest RAM).
    QemuMemoryError,
    /// qemu refused or escalated an injection (reporting disabled, triple fault).
    Injection,
}

/// A qemu log line about a machine check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostLine {
    /// What it says.
    pub kind: HostLineKind,
    /// The guest-physical address qemu named (`GUEST addr 0x...`).
    #[serde(with = "coroner_formats::hex::option")]
    pub guest_addr: Option<u64>,
    /// `BUS_MCEERR_AR` or `BUS_MCEERR_AO`, when named.
    pub code: Option<String>,
    /// The line (raw: escape before display).
    pub text: String,
}

/// The host's side as the capture recorded it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HostSide {
    /// `MEMORY_FAILURE` events, in order.
    pub events: Vec<HostEvent>,
    /// Whether the capture recorded QMP events at all (a capture that did not wait for
    /// the freeze sees only the events of its own dump: qemu does not replay events).
    pub events_recorded: bool,
    /// Machine-check lines of qemu's log.
    pub lines: Vec<HostLine>,
    /// Where qemu's log came from, when there was one.
    pub log_source: Option<String>,
}

/// `MEMORY_FAILURE` events from the capture's record, and whether there is a record
/// (without one, no event was watched).
pub fn events(capture: Option<&CaptureInfo>) -> (Vec<HostEvent>, bool) {
    let Some(c) = capture else {
        return (Vec::new(), false);
    };
    let found = c
        .events
        .iter()
        .filter(|e| e.event == "MEMORY_FAILURE")
        .map(|e| {
            let s = |k: &str| e.data[k].as_str().unwrap_or("?").to_string();
            let flag = |k: &str| e.data["flags"][k].as_bool().unwrap_or(false);
            HostEvent {
                time_us: u64::try_from(e.time_us()).ok().filter(|&t| t > 0),
                recipient: s("recipient"),
                action: s("action"),
                action_required: flag("action-required"),
                recursive: flag("recursive"),
            }
        })
        .collect::<Vec<_>>();
    match &c.libvirt {
        // A capture through libvirt: libvirt's memory-failure events (qemu's
        // MEMORY_FAILURE, timed when coroner received them), when `watch` followed them.
        Some(l) => {
            let mut found = found;
            found.extend(
                l.events
                    .iter()
                    .filter(|e| e.kind == "memory-failure")
                    .map(|e| HostEvent {
                        time_us: Some(e.time_unix_us).filter(|&t| t > 0),
                        recipient: e.field("recipient").unwrap_or("?").to_string(),
                        action: e.field("action").unwrap_or("?").to_string(),
                        action_required: e.field("action required") == Some("1"),
                        recursive: e.field("recursive") == Some("1"),
                    }),
            );
            (found, l.events_watched)
        }
        None => (found, true),
    }
}

fn hex_after(text: &str, marker: &str) -> Option<u64> {
    let rest = &text[text.find(marker)? + marker.len()..];
    let word = rest.split_whitespace().next()?;
    let word = word.strip_prefix("0x").unwrap_or(word);
    u64::from_str_radix(word, 16).ok()
}

/// Machine-check lines of a qemu log.
pub fn log_lines(log: &str) -> Vec<HostLine> {
    log.lines()
        .filter_map(|line| {
            let code = ["BUS_MCEERR_AR", "BUS_MCEERR_AO"]
                .into_iter()
                .find(|c| line.contains(c))
                .map(String::from);
            let kind = if line.contains("Guest MCE Memory Error at QEMU addr") {
                HostLineKind::GuestRamError
            } else if line.contains("for memory used by QEMU itself")
                || line.contains("QEMU got Hardware memory error")
            {
                HostLineKind::QemuMemoryError
            } else if line.contains("Uncorrected error reporting disabled")
                || line.contains("raising triple fault")
                || line.contains("MCE injection not supported")
            {
                HostLineKind::Injection
            } else {
                return None;
            };
            Some(HostLine {
                kind,
                guest_addr: hex_after(line, "GUEST addr "),
                code,
                text: line.trim_end().to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_from_capture_metadata() {
        let capture = serde_json::json!({"events": [
            {"event": "MEMORY_FAILURE", "timestamp": {"seconds": 1795348531, "microseconds": 692831},
             "data": {"flags": {"recursive": false, "action-required": true}, "recipient": "guest", "action": "inject"}},
            {"event": "STOP", "timestamp": {"seconds": 1795348531, "microseconds": 723741}},
            {"event": "MEMORY_FAILURE", "seconds": 1795348618, "microseconds": 573127,
             "data": {"action": "inject", "flags": {"action-required": false, "recursive": false}, "recipient": "guest"}},
            {"event": "MEMORY_FAILURE", "data": {"recipient": "hypervisor", "action": "fatal", "flags": {"action-required": true}}}
        ]});
        let capture: CaptureInfo = serde_json::from_value(capture).unwrap();
        let (ev, recorded) = events(Some(&capture));
        assert!(recorded);
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[1].time_us, Some(1_795_348_618_573_127));
        let ev = [ev[0].clone(), ev[2].clone()];
        assert_eq!(ev[0].time_us, Some(1_795_348_531_692_831));
        assert_eq!(
            (ev[0].recipient.as_str(), ev[0].action.as_str()),
            ("guest", "inject")
        );
        assert!(ev[0].action_required && !ev[0].recursive);
        assert_eq!((ev[1].time_us, ev[1].action.as_str()), (None, "fatal"));
        assert_eq!(events(None), (Vec::new(), false));
    }

    #[test]
    fn events_from_libvirt() {
        let capture = serde_json::json!({"libvirt": {"uri": "qemu:///system", "domain": "d",
            "state_before": "crashed (panicked)", "events_watched": true, "events": [
            {"time_unix_us": 1_795_348_531_700_000u64, "kind": "memory-failure",
             "detail": "recipient: guest; action: inject; flags:; action required: 1; recursive: 0"},
            {"time_unix_us": 1_795_348_531_800_000u64, "kind": "lifecycle", "detail": "Crashed Panicked"}
        ]}});
        let capture: CaptureInfo = serde_json::from_value(capture).unwrap();
        let (ev, recorded) = events(Some(&capture));
        assert!(recorded);
        assert_eq!(
            ev,
            [HostEvent {
                time_us: Some(1_795_348_531_700_000),
                recipient: "guest".into(),
                action: "inject".into(),
                action_required: true,
                recursive: false,
            }]
        );
        // A one-shot capture through libvirt followed no events.
        let once: CaptureInfo = serde_json::from_value(serde_json::json!({"libvirt": {
            "uri": "qemu:///system", "domain": "d", "state_before": "crashed (panicked)"}}))
        .unwrap();
        assert_eq!(events(Some(&once)), (Vec::new(), false));
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_safe(text in "(Guest MCE Memory Error at QEMU addr |GUEST addr |0x|BUS_MCEERR_A[RO]|[ -~]{0,8}|\n){0,30}") {
            for l in log_lines(&text) {
                proptest::prop_assert!(!l.text.contains('\n'));
            }
        }
    }

    #[test]
    fn qemu_log_lines() {
        let log = "\
qemu-system-x86_64: Guest MCE Memory Error at QEMU addr 0x7f3a1c345000 and GUEST addr 0x2345000 of type BUS_MCEERR_AR injected
qemu-system-x86_64: warning: Guest MCE Memory Error at QEMU addr 0x7f3a1c456000 and GUEST addr 0x3456000 of type BUS_MCEERR_AO injected
2024-01-01T00:00:00.000000Z qemu-system-x86_64: Hardware memory error at addr 0x7f00 of type BUS_MCEERR_AO for memory used by QEMU itself instead of guest system!
CPU 1: MCE capability is not enabled, raising triple fault
unrelated line
";
        let l = log_lines(log);
        assert_eq!(l.len(), 4);
        assert_eq!(l[0].kind, HostLineKind::GuestRamError);
        assert_eq!(l[0].guest_addr, Some(0x2345000));
        assert_eq!(l[0].code.as_deref(), Some("BUS_MCEERR_AR"));
        assert_eq!(
            (l[1].guest_addr, l[1].code.as_deref()),
            (Some(0x3456000), Some("BUS_MCEERR_AO"))
        );
        assert_eq!(
            (l[2].kind, l[2].guest_addr),
            (HostLineKind::QemuMemoryError, None)
        );
        assert_eq!(l[3].kind, HostLineKind::Injection);
    }
}
