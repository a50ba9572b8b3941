//! BTF type records (`include/uapi/linux/btf.h`): one [`BtfType`] per record, in id order.

/// A type id: its position in the type section, from 1 (0 is `void`).
pub type TypeId = u32;

/// A member of a struct or union.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Offset of its name in the string section (0: anonymous).
    pub name_off: u32,
    /// Its type.
    pub type_id: TypeId,
    /// Offset from the start of the struct, in bits.
    pub bit_offset: u32,
    /// Width of a bitfield, in bits; 0 for a plain member.
    pub bitfield_size: u8,
}

/// What a type is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `void`, or a kind this reader skips.
    Void,
    /// An integer of `size` bytes.
    Int {
        /// Bytes.
        size: u32,
        /// Signed.
        signed: bool,
    },
    /// A pointer.
    Ptr(TypeId),
    /// An array of `nelems` elements.
    Array {
        /// Element type.
        elem: TypeId,
        /// Element count (0 for a flexible array).
        nelems: u32,
    },
    /// A struct.
    Struct {
        /// Bytes.
        size: u32,
        /// Members, in order.
        members: Vec<Member>,
    },
    /// A union.
    Union {
        /// Bytes.
        size: u32,
        /// Members.
        members: Vec<Member>,
    },
    /// An enum (`ENUM` or `ENUM64`).
    Enum {
        /// Bytes.
        size: u32,
        /// Values: name offset and value.
        values: Vec<(u32, i64)>,
    },
    /// A forward declaration.
    Fwd,
    /// A typedef, `const`, `volatile`, `restrict` or type tag of another type.
    Alias(TypeId),
    /// A function (`FUNC`) or prototype (`FUNC_PROTO`).
    Func,
    /// A variable of a type.
    Var(TypeId),
    /// A data section: variables at offsets.
    Datasec {
        /// Variables: type id (a `Var`), offset and size.
        vars: Vec<(TypeId, u32, u32)>,
    },
    /// A floating-point type of `size` bytes.
    Float(u32),
}

/// One type record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BtfType {
    /// Offset of its name in the string section.
    pub name_off: u32,
    /// What it is.
    pub kind: Kind,
}
