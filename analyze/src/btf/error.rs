//! Why BTF could not be read or a layout not resolved.

use super::TypeId;

/// Why BTF data could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BtfError {
    /// The data does not start with a BTF header.
    #[error("not BTF: {0}")]
    NotBtf(String),
    /// A header field points outside the data.
    #[error("BTF header: {0}")]
    BadHeader(String),
    /// A type record runs past the type section, or is of a kind this reader cannot size.
    #[error("BTF type {id} at byte {at} of the type section: {why}")]
    BadType {
        /// The id the record would have.
        id: TypeId,
        /// Its offset in the type section.
        at: usize,
        /// What is wrong.
        why: String,
    },
    /// No BTF was found in guest memory.
    #[error("no BTF in guest memory: {0}")]
    NotFound(String),
    /// More types than any kernel has.
    #[error("BTF claims more than {limit} types")]
    TooManyTypes {
        /// The limit.
        limit: usize,
    },
}

/// Why a layout (a struct member, a size, an enum value) is not known from BTF.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// No struct, union, enum or variable of that name.
    #[error("BTF has no {what} named {name}")]
    NoType {
        /// `struct`, `enum`, ...
        what: &'static str,
        /// The name.
        name: String,
    },
    /// The struct has no such member.
    #[error("BTF's struct {ty} has no member {member}")]
    NoMember {
        /// The struct.
        ty: String,
        /// The member path.
        member: String,
    },
    /// The enum has no such value.
    #[error("BTF's enum {ty} has no value {value}")]
    NoValue {
        /// The enum.
        ty: String,
        /// The value.
        value: String,
    },
    /// A type whose size cannot be known (a chain too deep, a forward declaration).
    #[error("BTF type {0} has no size")]
    NoSize(TypeId),
}
