//! The container reader: seek table, metadata frame, frames.

use coroner_formats::{ByteSource, ContainerReader};

/// Content bytes read back at most, so a container that claims terabytes stays cheap.
const READ_LIMIT: u64 = 8 << 20;

/// Opens `data` as a `.core.zst` container and reads its metadata and (some of) its
/// content through the frame cache.
pub fn container(data: &[u8]) {
    let Ok(r) = ContainerReader::from_source(Box::new(data.to_vec()), 1 << 20) else {
        return;
    };
    if let Some(m) = r.metadata() {
        crate::invariants::terminal_safe(&m.tool);
        let _ = serde_json_len(m);
    }
    let len = ByteSource::len(&r);
    let mut buf = vec![0u8; 4096];
    let mut at = 0u64;
    while at < len.min(READ_LIMIT) {
        let n = (len - at).min(buf.len() as u64) as usize;
        if r.read_at(at, &mut buf[..n]).is_err() {
            break;
        }
        let _ = r.zero_run_end(at);
        at += n as u64;
    }
}

fn serde_json_len(m: &coroner_formats::Metadata) -> usize {
    m.extra.len() + m.vmcoreinfo_candidates.len()
}
