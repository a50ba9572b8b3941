//! The tail of qemu's log (its stderr), where KVM errors and register dumps land.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use coroner_formats::input_file::open_regular;
use serde::{Deserialize, Serialize};

/// The tail of qemu's log: where it came from and the text.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogTail {
    /// Where it was read from (a path).
    pub source: String,
    /// Bytes of the log before the tail that were not kept.
    pub skipped: u64,
    /// The tail, as text (lossily decoded; escape before printing).
    pub text: String,
}

impl LogTail {
    /// Reads at most `max` bytes from the end of the regular file at `path` (a FIFO or a
    /// device is refused, never waited on), from the first line that starts within them.
    pub fn read(path: &Path, max: u64) -> Result<LogTail, coroner_formats::Error> {
        let io = |source| coroner_formats::Error::Io {
            what: "read",
            path: path.to_path_buf(),
            source,
        };
        let mut f = open_regular(path)?;
        let len = f.metadata().map_err(io)?.len();
        let skipped = len.saturating_sub(max);
        f.seek(SeekFrom::Start(skipped)).map_err(io)?;
        let mut buf = Vec::with_capacity((len - skipped).min(max) as usize);
        f.take(max).read_to_end(&mut buf).map_err(io)?;
        // Start at a line boundary when the tail was cut.
        let start = if skipped > 0 {
            buf.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1)
        } else {
            0
        };
        Ok(LogTail {
            source: path.display().to_string(),
            skipped: skipped + start as u64,
            text: String::from_utf8_lossy(&buf[start..]).into_owned(),
        })
    }

    /// A text tail given by its caller, e.g. a log passed on the command line.
    pub fn of_text(text: String, source: String) -> LogTail {
        LogTail {
            source,
            skipped: 0,
            text,
        }
    }

    /// Where it came from, saying how much was left out: `/var/log/q.log (its last
    /// 262144 bytes; 1024 before them not read)`.
    pub fn described_source(&self) -> String {
        if self.skipped == 0 {
            self.source.clone()
        } else {
            format!(
                "{} (its last {} bytes; {} before them not read)",
                self.source,
                self.text.len(),
                self.skipped
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tail_is_bounded_and_starts_on_a_line() {
        let dir = std::env::temp_dir().join(format!("coroner-record-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("q.log");
        std::fs::write(&p, "first line\nsecond line\nthird\n").unwrap();
        let all = LogTail::read(&p, 1 << 20).unwrap();
        assert_eq!(all.skipped, 0);
        assert_eq!(all.text, "first line\nsecond line\nthird\n");
        assert_eq!(all.described_source(), p.display().to_string());
        let t = LogTail::read(&p, 15).unwrap();
        assert_eq!(t.text, "third\n");
        assert_eq!(t.skipped, 23);
        assert!(t.described_source().contains("23 before them not read"));
        let fifo = dir.join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let e = LogTail::read(&fifo, 100).unwrap_err();
        let why = std::error::Error::source(&e).unwrap().to_string();
        assert!(why.contains("FIFO"), "{e}: {why}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
