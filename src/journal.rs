//! Diagnostics on stderr for long-running commands: plain lines on a terminal or in a
//! file, and lines with syslog priority prefixes (`<3>`, `<4>`, `<6>`) when stderr is the
//! systemd journal (`JOURNAL_STREAM` names stderr's device and inode).

use std::io::Write;
use std::os::fd::AsFd;
use std::sync::OnceLock;

use coroner_capture::LogLevel;

/// True when stderr is connected to the journal.
fn to_journal() -> bool {
    static JOURNAL: OnceLock<bool> = OnceLock::new();
    *JOURNAL.get_or_init(|| {
        let Ok(v) = std::env::var("JOURNAL_STREAM") else {
            return false;
        };
        let Some((dev, ino)) = v.split_once(':') else {
            return false;
        };
        let Ok(st) = rustix::fs::fstat(std::io::stderr().as_fd()) else {
            return false;
        };
        dev.parse::<u64>().ok() == Some(st.st_dev) && ino.parse::<u64>().ok() == Some(st.st_ino)
    })
}

/// The line for `message` at `level`, as it goes to stderr.
fn line(level: LogLevel, message: &str, journal: bool) -> String {
    let message = coroner_analyze::escape_control(message).replace('\n', "\\n");
    if journal {
        let p = match level {
            LogLevel::Error => 3,
            LogLevel::Warning => 4,
            LogLevel::Info => 6,
        };
        format!("<{p}>{message}\n")
    } else {
        let tag = match level {
            LogLevel::Error => "error: ",
            LogLevel::Warning => "warning: ",
            LogLevel::Info => "",
        };
        format!("coroner: {tag}{message}\n")
    }
}

/// Writes one diagnostic line to stderr.
pub fn log(level: LogLevel, message: &str) {
    let _ = std::io::stderr()
        .lock()
        .write_all(line(level, message, to_journal()).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(line(LogLevel::Error, "x", true), "<3>x\n");
        assert_eq!(line(LogLevel::Info, "x", false), "coroner: x\n");
        assert_eq!(
            line(LogLevel::Warning, "a\x1b[2Jb", false),
            "coroner: warning: a\\e[2Jb\n"
        );
    }
}
