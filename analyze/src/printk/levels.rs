//! A set of log levels as `dmesg --level` takes it: names or numbers, comma lists, and
//! `LEVEL+` (that level and every more severe one) or `+LEVEL` (that level and every less
//! severe one), as util-linux `dmesg` reads them.

use std::fmt;
use std::str::FromStr;

/// The kernel's level names, index = level (`KERN_EMERG` 0 ... `KERN_DEBUG` 7).
pub const LEVEL_NAMES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warn", "notice", "info", "debug",
];

/// A set of levels 0..=7 (bit `n` = level `n`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogLevels(u8);

impl LogLevels {
    /// Level `max` and every more severe one (`0..=max`).
    pub fn up_to(max: u8) -> Self {
        LogLevels(((1u16 << (u16::from(max.min(7)) + 1)) - 1) as u8)
    }

    /// True when the set holds `level`; levels above 7 are never held.
    pub fn contains(self, level: u8) -> bool {
        level < 8 && self.0 >> level & 1 == 1
    }
}

/// The error of a bad `--level` list: names the word and the accepted ones.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown log level {word:?}: expected {} or 0-7, comma-separated, each optionally LEVEL+ or +LEVEL", LEVEL_NAMES.join(", "))]
pub struct BadLevel {
    /// The word that is not a level.
    pub word: String,
}

fn one_level(word: &str) -> Option<u8> {
    if let Ok(n) = word.parse::<u8>() {
        return (n < 8).then_some(n);
    }
    let lower = word.to_ascii_lowercase();
    // util-linux also knows the long forms the kernel's headers use.
    let name = match lower.as_str() {
        "error" => "err",
        "warning" => "warn",
        "emergency" => "emerg",
        "critical" => "crit",
        other => other,
    };
    LEVEL_NAMES.iter().position(|n| *n == name).map(|i| i as u8)
}

impl FromStr for LogLevels {
    type Err = BadLevel;

    fn from_str(s: &str) -> Result<Self, BadLevel> {
        let bad = |w: &str| BadLevel {
            word: w.to_string(),
        };
        let mut set = 0u8;
        for word in s.split(',') {
            let w = word.trim();
            set |= if let Some(l) = w.strip_suffix('+') {
                LogLevels::up_to(one_level(l).ok_or_else(|| bad(w))?).0
            } else if let Some(l) = w.strip_prefix('+') {
                let n = one_level(l).ok_or_else(|| bad(w))?;
                !LogLevels::up_to(n).0 | 1 << n
            } else {
                1 << one_level(w).ok_or_else(|| bad(w))?
            };
        }
        Ok(LogLevels(set))
    }
}

impl fmt::Display for LogLevels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = (0..8u8)
            .filter(|l| self.contains(*l))
            .map(|l| LEVEL_NAMES[usize::from(l)])
            .collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> String {
        s.parse::<LogLevels>().unwrap().to_string()
    }

    #[test]
    fn names_numbers_lists_and_ranges() {
        assert_eq!(set("err"), "err");
        assert_eq!(set("err,warn"), "err,warn");
        assert_eq!(set("3,WARNING"), "err,warn");
        assert_eq!(set("err+"), "emerg,alert,crit,err");
        assert_eq!(set("+err"), "err,warn,notice,info,debug");
        assert_eq!(set("debug+"), "emerg,alert,crit,err,warn,notice,info,debug");
        assert_eq!(set("emerg, +info"), "emerg,info,debug");
        assert_eq!(LogLevels::up_to(4).to_string(), "emerg,alert,crit,err,warn");
        assert!(!LogLevels::up_to(7).contains(8));
        for bad in ["", "8", "errr", "err++", "+", "-1"] {
            assert!(bad.parse::<LogLevels>().is_err(), "{bad:?}");
        }
        let e = "fatal".parse::<LogLevels>().unwrap_err().to_string();
        assert!(e.contains("\"fatal\"") && e.contains("emerg, alert"), "{e}");
    }
}
