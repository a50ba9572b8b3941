//! A QMP monitor that says whatever the input says: the client's greeting check, message
//! framing, answers matched by id, errors, events and their bounded queue, through
//! `status` (as an HA agent polls) and the commands `capture` sends.
//!
//! The input is what the peer sends, byte for byte; then it closes its side, so every read
//! past the input ends at once (no timeout is ever waited for). Commands are numbered from
//! 1 in each session: an answer `{"return": {}, "id": 1}` answers `qmp_capabilities`.

use std::io::Read;
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Duration;

use coroner_capture::{status, Qmp, QmpAddress};
use rustix::net::{send, SendFlags};

/// How long the client waits for an answer: never reached, the peer closes after the input.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Sessions the peer serves, each with the whole input: `status`, then the capture's
/// commands.
const SESSIONS: usize = 2;

/// This process's scratch directory: the socket and an (empty) captures directory.
fn scratch() -> PathBuf {
    std::env::temp_dir().join(format!("coroner-fuzz-qmp-{}", std::process::id()))
}

/// Serves `data` to [`SESSIONS`] clients of `listener`, draining what they send.
fn serve(listener: UnixListener, data: Vec<u8>) {
    for _ in 0..SESSIONS {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        let mut off = 0;
        // NOSIGNAL: a client that gave up and closed must not kill the process.
        while off < data.len() {
            match send(&s, &data[off..], SendFlags::NOSIGNAL) {
                Ok(n) if n > 0 => off += n,
                _ => break,
            }
        }
        let _ = s.shutdown(Shutdown::Write);
        let mut sink = [0u8; 4096];
        while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
    }
}

/// Runs `status` and the capture's QMP conversation against a peer that sends `data`.
pub fn qmp(data: &[u8]) {
    let dir = scratch();
    let captures = dir.join("captures");
    if std::fs::create_dir_all(&captures).is_err() {
        return;
    }
    let path = dir.join("qmp.sock");
    let _ = std::fs::remove_file(&path);
    let Ok(listener) = UnixListener::bind(&path) else {
        return;
    };
    let peer = {
        let data = data.to_vec();
        std::thread::spawn(move || serve(listener, data))
    };
    let address = QmpAddress::Unix(path.clone());

    let st = status(&address, TIMEOUT, Some(&captures));
    crate::invariants::terminal_safe(&st.detail);
    if let Some(state) = &st.run_state {
        crate::invariants::terminal_safe(state);
    }

    match Qmp::connect(&address, TIMEOUT) {
        Ok(mut q) => {
            crate::invariants::terminal_safe(&q.version().package);
            let _ = q.run_state();
            if let Ok(text) = q.hmp("info registers -a") {
                crate::invariants::terminal_safe(&text);
            }
            let _ = q.execute("query-dump", None);
            let _ = q.next_event(Duration::ZERO);
            let _ = q.wait_event("DUMP_COMPLETED", 0, Duration::ZERO);
            for e in q.events() {
                crate::invariants::terminal_safe(&e.event);
                let _ = e.time_us();
            }
            let _ = q.events_dropped().len();
        }
        Err(e) => crate::invariants::terminal_safe(&e.to_string()),
    }
    // A session `status` gave up on before connecting leaves the peer waiting: connect
    // once more so it ends.
    let _ = UnixStream::connect(&path);
    let _ = UnixStream::connect(&path);
    let _ = peer.join();
    let _ = std::fs::remove_file(&path);
}
