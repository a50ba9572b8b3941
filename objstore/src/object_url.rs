//! `s3://BUCKET/KEY` URLs.

use crate::error::StoreError;

/// An object (or, with a key ending in `/` or empty, a prefix) in a bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectUrl {
    /// The bucket.
    pub bucket: String,
    /// The key (no leading `/`).
    pub key: String,
}

/// True when `text` names an object-store location (`s3://`).
pub fn is_object_url(text: &str) -> bool {
    text.starts_with("s3://")
}

/// The `s3://` URL a path given on the command line spells, when it spells one (a local
/// `./s3:/x` does not).
pub fn object_url_of(path: &std::path::Path) -> Option<&str> {
    path.to_str().filter(|t| is_object_url(t))
}

impl ObjectUrl {
    /// Parses `s3://BUCKET/KEY`.
    pub fn parse(url: &str) -> Result<ObjectUrl, StoreError> {
        let bad = |why| StoreError::BadUrl {
            url: url.to_string(),
            why,
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("no s3:// scheme"))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket"));
        }
        if !bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            return Err(bad(
                "a bucket name has lowercase letters, digits, '-' and '.' only",
            ));
        }
        if key.split('/').any(|part| part == ".." || part == ".") {
            return Err(bad("'.' and '..' are not key segments"));
        }
        if key.chars().any(char::is_control) {
            return Err(bad("control characters in the key"));
        }
        Ok(ObjectUrl {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }
}

impl ObjectUrl {
    /// Parses `s3://BUCKET/KEY` naming one object: a prefix (an empty key, or one ending
    /// in `/`) is refused.
    pub fn parse_object(url: &str) -> Result<ObjectUrl, StoreError> {
        let parsed = Self::parse(url)?;
        if parsed.key.is_empty() || parsed.key.ends_with('/') {
            return Err(StoreError::BadUrl {
                url: url.to_string(),
                why: "it names a prefix; name the object, e.g. s3://BUCKET/vm1.core.zst",
            });
        }
        Ok(parsed)
    }
}

impl std::fmt::Display for ObjectUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = ObjectUrl::parse("s3://caps/host1/vm1.core.zst").unwrap();
        assert_eq!(
            (u.bucket.as_str(), u.key.as_str()),
            ("caps", "host1/vm1.core.zst")
        );
        assert_eq!(u.to_string(), "s3://caps/host1/vm1.core.zst");
        assert_eq!(ObjectUrl::parse("s3://caps").unwrap().key, "");
        for bad in [
            "http://x/y",
            "s3:///k",
            "s3://Caps/k",
            "s3://b/../k",
            "s3://b/a\nb",
        ] {
            assert!(ObjectUrl::parse(bad).is_err(), "{bad}");
        }
        assert!(is_object_url("s3://b/k") && !is_object_url("/tmp/s3://x"));
        use std::path::Path;
        assert_eq!(object_url_of(Path::new("s3://b/k")), Some("s3://b/k"));
        assert_eq!(object_url_of(Path::new("./s3://b/k")), None);
        assert!(ObjectUrl::parse_object("s3://b/k").is_ok());
        for prefix in ["s3://b", "s3://b/", "s3://b/dir/"] {
            assert!(ObjectUrl::parse_object(prefix).is_err(), "{prefix}");
        }
    }
}
