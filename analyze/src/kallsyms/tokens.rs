//! `kallsyms_token_table` and `kallsyms_token_index`: the 256 tokens names are made of.
//!
//! `scripts/kallsyms.c` writes the 256 tokens as consecutive NUL-terminated strings and
//! `token_index[i]` as the offset of token `i`, so `token_index[0] == 0` and every entry is
//! the previous one plus the previous token's length plus one. Anything else is a lie.

use super::error::KallsymsError;
use super::read::read_prefix;
use crate::kmem::{KernelMem, VirtAddr};

/// The longest token accepted (a token is never longer than a symbol, `KSYM_NAME_LEN` 512).
pub(crate) const MAX_TOKEN: u64 = 512;

/// The 256 decoded tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TokenTable {
    tokens: Vec<Vec<u8>>,
    /// Bytes the table occupies, through the last token's NUL.
    pub len: u64,
}

impl TokenTable {
    /// Reads `kallsyms_token_index` at `index` and the strings at `table`, and checks that
    /// they agree.
    pub fn read(
        mem: &dyn KernelMem,
        table: VirtAddr,
        index: VirtAddr,
    ) -> Result<Self, KallsymsError> {
        let mut raw = [0u8; 512];
        mem.read_virt(index, &mut raw)
            .map_err(|source| KallsymsError::Read {
                what: "kallsyms_token_index",
                va: index,
                source,
            })?;
        let mut idx = [0u16; 256];
        for (i, v) in idx.iter_mut().enumerate() {
            *v = u16::from_le_bytes([raw[2 * i], raw[2 * i + 1]]);
        }
        // Enough bytes for every token up to the last one's maximal length; the table never
        // runs into the index that follows it.
        let mut want = u64::from(idx[255]) + MAX_TOKEN + 1;
        if let Some(gap) = index.0.checked_sub(table.0) {
            if gap > 0 {
                want = want.min(gap);
            }
        }
        let (bytes, err) = read_prefix(mem, table, want);
        if bytes.is_empty() {
            if let Some(source) = err {
                return Err(KallsymsError::Read {
                    what: "kallsyms_token_table",
                    va: table,
                    source,
                });
            }
        }
        Self::parse(table, &bytes, index, &idx)
    }

    /// Checks `idx` against the strings in `bytes` (the table's first bytes, at `table`).
    pub fn parse(
        table: VirtAddr,
        bytes: &[u8],
        index: VirtAddr,
        idx: &[u16; 256],
    ) -> Result<Self, KallsymsError> {
        let mut tokens = Vec::with_capacity(256);
        let mut off = 0usize;
        for (i, &found) in idx.iter().enumerate() {
            if usize::from(found) != off {
                return Err(KallsymsError::TokenIndex {
                    index: i,
                    found,
                    expected: off as u64,
                    va: index.add(2 * i as u64),
                });
            }
            let rest = bytes.get(off..).unwrap_or_default();
            let Some(len) = rest.iter().position(|&b| b == 0) else {
                return Err(KallsymsError::TokenUnterminated {
                    index: i,
                    va: table.add(off as u64),
                });
            };
            tokens.push(rest[..len].to_vec());
            off += len + 1;
        }
        Ok(Self {
            tokens,
            len: off as u64,
        })
    }

    /// The token for byte `b`.
    pub fn token(&self, b: u8) -> &[u8] {
        self.tokens
            .get(usize::from(b))
            .map_or(&[], |t| t.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmem::SliceKernelMem;

    fn table_bytes() -> (Vec<u8>, [u16; 256]) {
        let mut bytes = Vec::new();
        let mut idx = [0u16; 256];
        for (i, v) in idx.iter_mut().enumerate() {
            *v = bytes.len() as u16;
            if i == 7 {
                // an empty token (an unused slot) is legal
            } else if i == 0x80 {
                bytes.extend_from_slice(b"sys_");
            } else {
                bytes.push(if (0x21..0x7f).contains(&i) {
                    i as u8
                } else {
                    b'q'
                });
            }
            bytes.push(0);
        }
        (bytes, idx)
    }

    #[test]
    fn reads_a_consistent_table() {
        let (bytes, idx) = table_bytes();
        let mut raw = Vec::new();
        for v in idx {
            raw.extend_from_slice(&v.to_le_bytes());
        }
        let end = bytes.len() as u64;
        let mem = SliceKernelMem::new(vec![
            (VirtAddr(0x1000), bytes),
            (VirtAddr(0x1000 + end), vec![0; 8]),
            (VirtAddr(0x3000), raw),
        ]);
        let t = TokenTable::read(&mem, VirtAddr(0x1000), VirtAddr(0x3000)).unwrap();
        assert_eq!(t.token(b'a'), b"a");
        assert_eq!(t.token(0x80), b"sys_");
        assert_eq!(t.token(7), b"");
        assert_eq!(t.len, end);
    }

    #[test]
    fn a_lying_index_is_an_error() {
        let (bytes, mut idx) = table_bytes();
        idx[0x41] += 1;
        let e = TokenTable::parse(VirtAddr(0x1000), &bytes, VirtAddr(0x3000), &idx).unwrap_err();
        assert_eq!(
            e,
            KallsymsError::TokenIndex {
                index: 0x41,
                found: idx[0x41],
                expected: u64::from(idx[0x41]) - 1,
                va: VirtAddr(0x3000 + 2 * 0x41),
            }
        );
        let (bytes, idx) = table_bytes();
        let cut = &bytes[..bytes.len() - 1];
        let e = TokenTable::parse(VirtAddr(0x1000), cut, VirtAddr(0x3000), &idx).unwrap_err();
        assert!(matches!(
            e,
            KallsymsError::TokenUnterminated { index: 255, .. }
        ));
    }
}
