//! Little-endian fields out of byte slices copied from the guest. Every accessor is
//! total: past the end it gives 0 (or a shorter slice), never a panic; callers check
//! their layouts first, so that only happens on a layout bug.

/// Little-endian u64 at `off` of `b`; 0 past the end.
pub(crate) fn u64_at(b: &[u8], off: u64) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = usize::try_from(off)
        .ok()
        .and_then(|o| b.get(o..o.checked_add(8)?))
    {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

/// Little-endian u32 at `off` of `b`; 0 past the end.
pub(crate) fn u32_at(b: &[u8], off: u64) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = usize::try_from(off)
        .ok()
        .and_then(|o| b.get(o..o.checked_add(4)?))
    {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

/// Little-endian u16 at `off` of `b`; 0 past the end.
pub(crate) fn u16_at(b: &[u8], off: u64) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = usize::try_from(off)
        .ok()
        .and_then(|o| b.get(o..o.checked_add(2)?))
    {
        a.copy_from_slice(s);
    }
    u16::from_le_bytes(a)
}

/// Byte at `off` of `b`; 0 past the end.
pub(crate) fn u8_at(b: &[u8], off: u64) -> u8 {
    usize::try_from(off)
        .ok()
        .and_then(|o| b.get(o))
        .copied()
        .unwrap_or(0)
}

/// `b[off..off + len]`, clipped to `b`.
pub(crate) fn bytes_at(b: &[u8], off: u64, len: u64) -> &[u8] {
    let start = usize::try_from(off).unwrap_or(usize::MAX).min(b.len());
    let end = usize::try_from(off.saturating_add(len))
        .unwrap_or(usize::MAX)
        .min(b.len())
        .max(start);
    &b[start..end]
}

/// Bytes up to the first NUL, as lossy UTF-8; `None` when empty.
pub(crate) fn c_string(bytes: &[u8]) -> Option<String> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    (end > 0).then(|| String::from_utf8_lossy(&bytes[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_are_total() {
        let b = [1u8, 2, 3, 4, 5, 6, 7, 8, 9];
        assert_eq!(u64_at(&b, 1), 0x0908_0706_0504_0302);
        assert_eq!(u64_at(&b, 2), 0);
        assert_eq!(u64_at(&b, u64::MAX), 0);
        assert_eq!(u32_at(&b, 5), 0x0908_0706);
        assert_eq!(u32_at(&b, 6), 0);
        assert_eq!(u16_at(&b, 7), 0x0908);
        assert_eq!(u8_at(&b, 9), 0);
        assert_eq!(bytes_at(&b, 7, 10), &[8, 9]);
        assert_eq!(bytes_at(&b, 20, 10), &[] as &[u8]);
        assert_eq!(bytes_at(&b, u64::MAX, u64::MAX), &[] as &[u8]);
    }

    #[test]
    fn c_string_stops_at_nul_and_empty_is_none() {
        assert_eq!(c_string(b"pci\0junk"), Some("pci".to_string()));
        assert_eq!(c_string(b"\0pci"), None);
        assert_eq!(c_string(b"abc"), Some("abc".to_string()));
    }
}
