//! The content digest of a format-2 container: the BLAKE3 of its frame manifest.
//!
//! The manifest is the text of every data frame's BLAKE3 in content order, lowercase hex,
//! each followed by `\n`. Workers hash their own frames in parallel and an all-zero frame's
//! digest is computed once, so the digest costs nothing for zero memory and little for the
//! rest (BLAKE3 runs at several GB/s a core, sha256 at about 1.7 with SHA-NI); it is as
//! strong as a hash of the content, and standard tools reproduce it (`b3sum` is packaged
//! by Debian, Fedora, Arch and Homebrew):
//!
//! ```text
//! zstd -dc X.core.zst | split -b FRAME_SIZE --filter='b3sum --no-names' | b3sum --no-names
//! ```
//!
//! Format-1 files recorded the sha256 of the whole content instead; readers check either.

use std::fmt;

use super::hex;

/// BLAKE3 of one frame's content.
pub fn frame_digest(content: &[u8]) -> [u8; 32] {
    blake3::hash(content).into()
}

/// The manifest hash, fed one frame digest at a time in content order.
#[derive(Clone, Default)]
pub struct FramesDigest {
    manifest: blake3::Hasher,
}

impl FramesDigest {
    /// An empty manifest.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the next frame's digest.
    pub fn push(&mut self, frame: &[u8; 32]) {
        let mut line = [b'\n'; 65];
        line[..64].copy_from_slice(hex(frame).as_bytes());
        self.manifest.update(&line);
    }

    /// The lowercase hex BLAKE3 of the manifest.
    pub fn finish(self) -> String {
        hex(self.manifest.finalize().as_bytes())
    }
}

/// Which digest a check computed: the one the container's format version records.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "algorithm", content = "hex")]
pub enum ContentDigest {
    /// Format 2: BLAKE3 of the frame manifest (metadata `content_frames_blake3`).
    FramesBlake3(String),
    /// Format 1: sha256 of the whole content (metadata `content_sha256`).
    Sha256(String),
}

impl ContentDigest {
    /// The digest in hex.
    pub fn hex(&self) -> &str {
        match self {
            Self::FramesBlake3(h) | Self::Sha256(h) => h,
        }
    }

    /// The metadata field that records it.
    pub fn field(&self) -> &'static str {
        match self {
            Self::FramesBlake3(_) => "content_frames_blake3",
            Self::Sha256(_) => "content_sha256",
        }
    }
}

impl fmt::Display for ContentDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FramesBlake3(h) => write!(f, "frames-blake3 {h}"),
            Self::Sha256(h) => write!(f, "sha256 {h}"),
        }
    }
}

/// The format-2 digest of `content` cut into frames of `frame_size` bytes (the last one
/// possibly shorter), as a writer with that frame size records it.
pub fn frames_blake3_of(content: &[u8], frame_size: usize) -> String {
    let mut d = FramesDigest::new();
    for frame in content.chunks(frame_size.max(1)) {
        d.push(&frame_digest(frame));
    }
    d.finish()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_is_hex_lines() {
        let content = b"hello, world\n";
        let manifest: String = content
            .chunks(5)
            .map(|c| format!("{}\n", hex(&frame_digest(c))))
            .collect();
        assert_eq!(
            frames_blake3_of(content, 5),
            hex(blake3::hash(manifest.as_bytes()).as_bytes())
        );
        // No frames: the BLAKE3 of the empty manifest.
        assert_eq!(
            frames_blake3_of(b"", 5),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    #[test]
    fn standard_tools_agree() {
        // The one-liner FORMAT.md gives, with coreutils' split and b3sum (installed by
        // .ci/run).
        let content: Vec<u8> = (0..20_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg("split -b 4096 --filter='b3sum --no-names' | b3sum --no-names")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(&content)?;
                child.wait_with_output()
            })
            .unwrap();
        assert!(out.status.success());
        let got = String::from_utf8(out.stdout).unwrap();
        assert_eq!(got.trim(), frames_blake3_of(&content, 4096));
    }
}
