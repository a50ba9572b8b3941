//! Where a QMP monitor listens: a unix socket path or `tcp:HOST:PORT`.

use std::fmt;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// A QMP monitor address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QmpAddress {
    /// A unix socket (`-qmp unix:PATH,server=on`); supports fd passing.
    Unix(PathBuf),
    /// A TCP monitor (`-qmp tcp:HOST:PORT,server=on`); no fd passing.
    Tcp(String),
}

impl QmpAddress {
    /// Parses `PATH`, `unix:PATH` or `tcp:HOST:PORT`.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |reason| Error::Address {
            address: s.to_string(),
            reason,
        };
        if let Some(rest) = s.strip_prefix("tcp:") {
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| bad("expected tcp:HOST:PORT"))?;
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(bad("expected tcp:HOST:PORT with a numeric port"));
            }
            return Ok(QmpAddress::Tcp(rest.to_string()));
        }
        let path = s.strip_prefix("unix:").unwrap_or(s);
        if path.is_empty() {
            return Err(bad("empty socket path"));
        }
        Ok(QmpAddress::Unix(PathBuf::from(path)))
    }
}

impl fmt::Display for QmpAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QmpAddress::Unix(p) => write!(f, "{}", p.display()),
            QmpAddress::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(
            QmpAddress::parse("/run/vm.qmp").unwrap(),
            QmpAddress::Unix("/run/vm.qmp".into())
        );
        assert_eq!(
            QmpAddress::parse("unix:/x").unwrap(),
            QmpAddress::Unix("/x".into())
        );
        assert_eq!(
            QmpAddress::parse("tcp:127.0.0.1:4444").unwrap(),
            QmpAddress::Tcp("127.0.0.1:4444".into())
        );
        assert!(QmpAddress::parse("tcp:host").is_err());
        assert!(QmpAddress::parse("tcp::80").is_err());
        assert!(QmpAddress::parse("").is_err());
    }
}
