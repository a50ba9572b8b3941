//! BTF, the kernel's own type information, read from guest memory: struct layouts,
//! sizes, enum values and per-CPU variables by name, for the readers of kernel structures
//! (modules, tasks) on kernels built with `CONFIG_DEBUG_INFO_BTF` (every major
//! distribution's). Parsed here: the format is small, and the crates that parse it are
//! LGPL (btf-rs, libbpf-rs) or built for loading BPF objects (aya-obj).

mod error;
mod locate;
mod parse;
mod types;

use std::collections::HashMap;

pub use error::{BtfError, LayoutError};
pub use locate::{locate_btf, FoundBtf};
pub use types::{BtfType, Kind, Member, TypeId};

/// How many typedef/const/volatile links are followed before a type counts as unsizable.
const MAX_ALIAS_CHAIN: usize = 32;

/// How deep anonymous struct and union members are searched for a member name.
const MAX_ANON_DEPTH: usize = 8;

/// Parsed BTF with an index by name.
pub struct Btf {
    types: Vec<BtfType>,
    strings: Vec<u8>,
    by_name: HashMap<String, Vec<TypeId>>,
}

/// Where a member is: offset from the start of its struct (bytes, or bits for a
/// bitfield) and its type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// Offset in bytes (of the byte holding the first bit, for a bitfield).
    pub offset: u64,
    /// Bit offset within that byte, for a bitfield.
    pub bit: u8,
    /// Width in bits for a bitfield, else 0.
    pub bits: u8,
    /// The member's type.
    pub type_id: TypeId,
}

impl Btf {
    /// Parses raw BTF (the kernel's `.BTF` section).
    pub fn parse(data: &[u8]) -> Result<Btf, BtfError> {
        let p = parse::parse(data)?;
        let mut btf = Btf {
            types: p.types,
            strings: p.strings,
            by_name: HashMap::new(),
        };
        for id in 1..=btf.types.len() as TypeId {
            let Some(t) = btf.get(id) else { continue };
            let named = matches!(
                t.kind,
                Kind::Struct { .. }
                    | Kind::Union { .. }
                    | Kind::Enum { .. }
                    | Kind::Alias(_)
                    | Kind::Var(_)
                    | Kind::Datasec { .. }
                    | Kind::Int { .. }
            );
            if named && t.name_off != 0 {
                let name = btf.name(t.name_off).to_string();
                btf.by_name.entry(name).or_default().push(id);
            }
        }
        Ok(btf)
    }

    /// Number of types (ids 1..=len).
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// True when there is no type.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// The record of type `id`.
    pub fn get(&self, id: TypeId) -> Option<&BtfType> {
        self.types.get((id as usize).checked_sub(1)?)
    }

    /// The string at `off` in the string section ("" when out of range).
    pub fn name(&self, off: u32) -> &str {
        let rest = self.strings.get(off as usize..).unwrap_or_default();
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        std::str::from_utf8(&rest[..end]).unwrap_or("")
    }

    /// The type `id` stands for, through typedefs, `const`, `volatile` and type tags.
    pub fn resolve(&self, mut id: TypeId) -> TypeId {
        for _ in 0..MAX_ALIAS_CHAIN {
            match self.get(id).map(|t| &t.kind) {
                Some(Kind::Alias(next)) => id = *next,
                _ => return id,
            }
        }
        id
    }

    /// The struct (or union) called `name` that has a body (not a forward declaration).
    pub fn struct_named(&self, name: &str) -> Result<TypeId, LayoutError> {
        self.by_name
            .get(name)
            .and_then(|ids| {
                ids.iter().copied().find(|&id| {
                    matches!(
                        self.get(id).map(|t| &t.kind),
                        Some(Kind::Struct { .. } | Kind::Union { .. })
                    )
                })
            })
            .ok_or_else(|| LayoutError::NoType {
                what: "struct",
                name: name.into(),
            })
    }

    /// Size in bytes of type `id`.
    pub fn size_of(&self, id: TypeId) -> Result<u64, LayoutError> {
        self.size_at(id, 0)
    }

    fn size_at(&self, id: TypeId, depth: usize) -> Result<u64, LayoutError> {
        let r = self.resolve(id);
        match self.get(r).map(|t| &t.kind) {
            Some(Kind::Int { size, .. } | Kind::Struct { size, .. } | Kind::Union { size, .. })
            | Some(Kind::Enum { size, .. } | Kind::Float(size)) => Ok(u64::from(*size)),
            Some(Kind::Ptr(_)) => Ok(8),
            Some(Kind::Array { elem, nelems }) if depth < MAX_ALIAS_CHAIN => Ok(self
                .size_at(*elem, depth + 1)?
                .saturating_mul(u64::from(*nelems))),
            _ => Err(LayoutError::NoSize(id)),
        }
    }

    /// Size in bytes of the struct called `name`.
    pub fn struct_size(&self, name: &str) -> Result<u64, LayoutError> {
        self.size_of(self.struct_named(name)?)
    }

    /// The member at `path` (`"list"`, `"thread_info.cpu"`) of the struct called `ty`,
    /// looking into anonymous struct and union members as C does.
    pub fn field(&self, ty: &str, path: &str) -> Result<Field, LayoutError> {
        let no_member = || LayoutError::NoMember {
            ty: ty.into(),
            member: path.into(),
        };
        let mut id = self.struct_named(ty)?;
        let mut offset_bits = 0u64;
        let mut last = None;
        for part in path.split('.') {
            let (bits, m) = self.member_in(id, part, 0).ok_or_else(no_member)?;
            offset_bits += bits;
            id = self.resolve(m.type_id);
            last = Some(m);
        }
        let m = last.ok_or_else(no_member)?;
        Ok(Field {
            offset: offset_bits / 8,
            bit: (offset_bits % 8) as u8,
            bits: m.bitfield_size,
            type_id: m.type_id,
        })
    }

    /// Offset in bytes of the member at `path` of the struct called `ty`.
    pub fn offset_of(&self, ty: &str, path: &str) -> Result<u64, LayoutError> {
        self.field(ty, path).map(|f| f.offset)
    }

    /// The member called `name` of struct or union `id` (searching anonymous members),
    /// with its offset in bits from the start of `id`.
    fn member_in(&self, id: TypeId, name: &str, depth: usize) -> Option<(u64, Member)> {
        let members = match &self.get(self.resolve(id))?.kind {
            Kind::Struct { members, .. } | Kind::Union { members, .. } => members,
            _ => return None,
        };
        if let Some(m) = members
            .iter()
            .find(|m| m.name_off != 0 && self.name(m.name_off) == name)
        {
            return Some((u64::from(m.bit_offset), m.clone()));
        }
        if depth >= MAX_ANON_DEPTH {
            return None;
        }
        members.iter().filter(|m| m.name_off == 0).find_map(|m| {
            self.member_in(m.type_id, name, depth + 1)
                .map(|(bits, found)| (u64::from(m.bit_offset) + bits, found))
        })
    }

    /// The value of `value` in the enum that has it, when `ty` is `None`, or in the enum
    /// called `ty`.
    pub fn enum_value(&self, ty: Option<&str>, value: &str) -> Result<i64, LayoutError> {
        let in_enum = |id: TypeId| match self.get(id).map(|t| &t.kind) {
            Some(Kind::Enum { values, .. }) => values
                .iter()
                .find(|(n, _)| self.name(*n) == value)
                .map(|&(_, v)| v),
            _ => None,
        };
        let found = match ty {
            Some(t) => self
                .by_name
                .get(t)
                .and_then(|ids| ids.iter().find_map(|&id| in_enum(id))),
            None => (1..=self.types.len() as TypeId).find_map(in_enum),
        };
        found.ok_or_else(|| LayoutError::NoValue {
            ty: ty.unwrap_or("(any)").into(),
            value: value.into(),
        })
    }

    /// The names and values of the enum called `ty`.
    pub fn enum_values(&self, ty: &str) -> Result<Vec<(String, i64)>, LayoutError> {
        self.by_name
            .get(ty)
            .and_then(|ids| {
                ids.iter()
                    .find_map(|&id| match self.get(id).map(|t| &t.kind) {
                        Some(Kind::Enum { values, .. }) => Some(
                            values
                                .iter()
                                .map(|&(n, v)| (self.name(n).to_string(), v))
                                .collect(),
                        ),
                        _ => None,
                    })
            })
            .ok_or_else(|| LayoutError::NoType {
                what: "enum",
                name: ty.into(),
            })
    }

    /// The offset of variable `var` in data section `section` (`.data..percpu`).
    pub fn section_var_offset(&self, section: &str, var: &str) -> Result<u64, LayoutError> {
        let sec = self
            .by_name
            .get(section)
            .and_then(|ids| {
                ids.iter()
                    .find_map(|&id| match self.get(id).map(|t| &t.kind) {
                        Some(Kind::Datasec { vars }) => Some(vars),
                        _ => None,
                    })
            })
            .ok_or_else(|| LayoutError::NoType {
                what: "data section",
                name: section.into(),
            })?;
        sec.iter()
            .find(|(v, _, _)| self.get(*v).is_some_and(|t| self.name(t.name_off) == var))
            .map(|&(_, off, _)| u64::from(off))
            .ok_or_else(|| LayoutError::NoMember {
                ty: section.into(),
                member: var.into(),
            })
    }

    /// Whether a struct called `ty` has a member at `path`.
    pub fn has_field(&self, ty: &str, path: &str) -> bool {
        self.field(ty, path).is_ok()
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;
