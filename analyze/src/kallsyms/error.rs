//! [`KallsymsError`]: why no symbol table could be read, with the bad value and where.

use std::fmt;

use serde::Serialize;

use super::AddressEncoding;
use crate::kmem::{VirtAddr, XlateError};

/// Why the kallsyms tables could not be read or did not hold together.
///
/// Every variant names the value that was wrong and the address it came from; the first
/// inconsistency stops the read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KallsymsError {
    /// VMCOREINFO lacks a key the reader needs (kernels before 6.0 export none of them).
    #[error("VMCOREINFO has no SYMBOL({name})")]
    MissingSymbol {
        /// The symbol, e.g. `kallsyms_names`.
        name: &'static str,
    },
    /// Guest memory holding one of the tables could not be read.
    #[error("cannot read {what} at {va}")]
    Read {
        /// Which table or field.
        what: &'static str,
        /// The address that failed.
        va: VirtAddr,
        /// Why.
        #[source]
        source: XlateError,
    },
    /// `kallsyms_num_syms` is zero or absurdly large.
    #[error("kallsyms_num_syms at {va} is {found}, outside 1..={limit}")]
    NumSyms {
        /// The value read.
        found: u64,
        /// Where it was read.
        va: VirtAddr,
        /// The largest count accepted.
        limit: u64,
    },
    /// A table would be larger than any real kernel's (the count or the layout lies).
    #[error("{what} at {va} would be {len} bytes (limit {limit})")]
    TooLarge {
        /// Which table.
        what: &'static str,
        /// Where it starts.
        va: VirtAddr,
        /// Its size in bytes.
        len: u64,
        /// The limit.
        limit: u64,
    },
    /// `kallsyms_token_index` does not point at the consecutive strings of the token table.
    #[error("kallsyms_token_index[{index}] at {va} is {found}, expected {expected}")]
    TokenIndex {
        /// The entry (0..256).
        index: usize,
        /// Its value.
        found: u16,
        /// The offset where token `index` starts, from the previous tokens' lengths.
        expected: u64,
        /// The address of the entry.
        va: VirtAddr,
    },
    /// A token of the token table has no terminating NUL within the readable bytes.
    #[error("token {index} at {va} has no terminating NUL")]
    TokenUnterminated {
        /// The token (0..256).
        index: usize,
        /// Where it starts.
        va: VirtAddr,
    },
    /// The names stream ended (unreadable memory or its bound) in the middle of a name.
    #[error("name {index} at {va} runs past the end of the readable names stream at {end}")]
    NamesTruncated {
        /// The symbol number.
        index: u32,
        /// Where its entry starts.
        va: VirtAddr,
        /// The first byte that could not be used.
        end: VirtAddr,
    },
    /// A name entry has length 0 (`scripts/kallsyms.c` never writes one).
    #[error("name {index} at {va} has length 0")]
    EmptyName {
        /// The symbol number.
        index: u32,
        /// Where its entry starts.
        va: VirtAddr,
    },
    /// A decoded name's type character is not a letter (nm type letters only).
    #[error("name {index} at {va} has type byte {kind:#04x}, not a letter")]
    BadKind {
        /// The symbol number.
        index: u32,
        /// Where its entry starts.
        va: VirtAddr,
        /// The first decoded byte.
        kind: u8,
    },
    /// A decoded name is empty or holds a byte that no kernel symbol has.
    #[error("name {index} at {va} decodes to a bad name (byte {byte:#04x} at position {pos})")]
    BadName {
        /// The symbol number.
        index: u32,
        /// Where its entry starts.
        va: VirtAddr,
        /// The offending byte (0 when the name is empty).
        byte: u8,
        /// Its position in the name (after the type letter).
        pos: usize,
    },
    /// Decoding every name ends somewhere `kallsyms_markers` cannot start.
    #[error("decoding {num_syms} names from {names} ends at {end}, where no kallsyms_markers table starts")]
    NamesEnd {
        /// Symbols decoded.
        num_syms: u32,
        /// Where the names start.
        names: VirtAddr,
        /// Where the decoding ended.
        end: VirtAddr,
    },
    /// No address encoding gives a table consistent with the kernel (sorted text symbols,
    /// `_stext` where VMCOREINFO or the caller says).
    #[error("no address encoding fits the kallsyms tables: {}", Rejections(.tried))]
    NoEncoding {
        /// Every encoding tried and why it was rejected.
        tried: Vec<Rejection>,
    },
    /// The scan found no kallsyms token table in the range.
    #[error("no kallsyms token table in {start}..+{len:#x}")]
    NotFound {
        /// Start of the range scanned.
        start: VirtAddr,
        /// Its length.
        len: u64,
    },
    /// The scan found token tables but none led to a consistent set of tables.
    #[error(
        "{candidates} kallsyms token table candidate(s) found (first at {first}), none usable"
    )]
    ScanFailed {
        /// How many token-table candidates were tried.
        candidates: usize,
        /// The first candidate's address.
        first: VirtAddr,
        /// Why the last candidate failed.
        #[source]
        last: Box<KallsymsError>,
    },
    /// The scan found a token-table candidate but could not place the other tables.
    #[error("token table candidate at {token_table}: {step}")]
    ScanIncomplete {
        /// The token table found.
        token_table: VirtAddr,
        /// The step that failed.
        step: ScanStep,
    },
}

/// The step of the signature scan that found nothing (see [`KallsymsError::ScanIncomplete`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ScanStep {
    /// The 48 tokens before the digits do not parse as NUL-terminated strings.
    TokenTable,
    /// The 256 token offsets appear nowhere after the token table.
    TokenIndex,
    /// No `kallsyms_markers` array fits before the token table.
    Markers,
    /// No `kallsyms_num_syms` + names stream fits before the markers.
    Names,
}

impl fmt::Display for ScanStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ScanStep::TokenTable => "the tokens before it do not parse",
            ScanStep::TokenIndex => "no kallsyms_token_index follows it",
            ScanStep::Markers => "no kallsyms_markers array precedes it",
            ScanStep::Names => "no kallsyms_num_syms and names stream fit before the markers",
        })
    }
}

/// One address encoding tried and why it did not fit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// The encoding.
    pub encoding: AddressEncoding,
    /// Where its address array would start.
    pub table: VirtAddr,
    /// Why it was rejected.
    pub reason: RejectReason,
}

/// Why an address encoding was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum RejectReason {
    /// The address array (or the relative base) could not be read.
    Unreadable {
        /// The address that failed.
        va: VirtAddr,
    },
    /// Text symbol `index` decodes below the text symbol before it.
    Unsorted {
        /// The symbol number.
        index: u32,
        /// Its decoded address.
        #[serde(with = "coroner_formats::hex")]
        addr: u64,
        /// The previous text symbol's address.
        #[serde(with = "coroner_formats::hex")]
        prev: u64,
    },
    /// `_stext` (or `_text`) decodes to another address than the anchor.
    Anchor {
        /// The address it decodes to (`None`: the table has neither symbol).
        #[serde(with = "coroner_formats::hex::option")]
        found: Option<u64>,
        /// `SYMBOL(_stext)` or the caller's hint.
        #[serde(with = "coroner_formats::hex")]
        expected: u64,
    },
    /// With no anchor: `_text`/`_stext` decode outside the scanned kernel image.
    OutsideImage {
        /// The address it decodes to (`None`: the table has neither symbol).
        #[serde(with = "coroner_formats::hex::option")]
        found: Option<u64>,
    },
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}: ", self.encoding.name(), self.table)?;
        match &self.reason {
            RejectReason::Unreadable { va } => write!(f, "unreadable at {va}"),
            RejectReason::Unsorted { index, addr, prev } => write!(
                f,
                "text symbol {index} at {addr:#x} is below the previous one at {prev:#x}"
            ),
            RejectReason::Anchor {
                found: Some(a),
                expected,
            } => {
                write!(f, "_stext would be {a:#x}, not {expected:#x}")
            }
            RejectReason::Anchor {
                found: None,
                expected,
            } => {
                write!(f, "no _stext/_text symbol to match {expected:#x}")
            }
            RejectReason::OutsideImage { found: Some(a) } => {
                write!(f, "_stext would be {a:#x}, outside the kernel image")
            }
            RejectReason::OutsideImage { found: None } => f.write_str("no _stext/_text symbol"),
        }
    }
}

/// Formats a rejection list on one line.
struct Rejections<'a>(&'a [Rejection]);

impl fmt::Display for Rejections<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no address table to try");
        }
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}
