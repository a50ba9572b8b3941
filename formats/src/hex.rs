//! Addresses and 64-bit register values in JSON as lowercase `"0x…"` strings: JSON tools
//! that read numbers as doubles (jq 1.6, JavaScript) lose the low bits above 2^53.
//!
//! Use on a field: `#[serde(with = "coroner_formats::hex")]` (`u64`),
//! `coroner_formats::hex::option` (`Option<u64>`) or `coroner_formats::hex::vec`
//! (`Vec<u64>`). Reading accepts the string and, for files written before schema 2, a
//! plain JSON number.

use serde::de::{self, Deserializer, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use std::fmt;

/// `v` as `0x…` lowercase hex.
pub fn to_string(v: u64) -> String {
    format!("{v:#x}")
}

/// Parses `0x…` (or `0X…`) hex.
pub fn parse(s: &str) -> Option<u64> {
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    u64::from_str_radix(digits, 16).ok()
}

/// Serializes a `u64` as `"0x…"`.
pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&to_string(*v))
}

/// Reads a `"0x…"` string or a plain number.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_any(HexVisitor)
}

struct HexVisitor;

impl Visitor<'_> for HexVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a \"0x…\" hex string or an unsigned integer")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::custom(format!("negative address {v}")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        parse(v).ok_or_else(|| E::custom(format!("{v:?} is not 0x-prefixed hex")))
    }
}

/// `Option<u64>` as `"0x…"` or `null`.
pub mod option {
    use super::*;

    /// Serializes `Some(v)` as `"0x…"`, `None` as `null`.
    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&to_string(*v)),
            None => s.serialize_none(),
        }
    }

    /// Reads `null`, a `"0x…"` string or a plain number.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        #[derive(serde::Deserialize)]
        struct Wrapped(#[serde(with = "super")] u64);
        let v: Option<Wrapped> = serde::Deserialize::deserialize(d)?;
        Ok(v.map(|Wrapped(v)| v))
    }
}

/// `Vec<u64>` (or any slice) as a list of `"0x…"`.
pub mod vec {
    use super::*;

    /// Serializes each element as `"0x…"`.
    pub fn serialize<S: Serializer>(v: &[u64], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for x in v {
            seq.serialize_element(&to_string(*x))?;
        }
        seq.end()
    }

    /// Reads a list of `"0x…"` strings or plain numbers.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
        #[derive(serde::Deserialize)]
        struct Wrapped(#[serde(with = "super")] u64);
        let v: Vec<Wrapped> = serde::Deserialize::deserialize(d)?;
        Ok(v.into_iter().map(|Wrapped(v)| v).collect())
    }
}

/// `Vec<Option<u64>>` (or any slice of them) as a list of `"0x…"` or `null`.
pub mod option_vec {
    use super::*;

    /// Serializes each element as `"0x…"` or `null`.
    pub fn serialize<S: Serializer>(v: &[Option<u64>], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for x in v {
            seq.serialize_element(&x.map(to_string))?;
        }
        seq.end()
    }
}

/// `Option<(u64, u32)>`, a descriptor table's base and limit, as `["0x…", limit]` or
/// `null`.
pub mod option_base_limit {
    use super::*;

    /// Serializes `Some((base, limit))` as `["0x…", limit]`, `None` as `null`.
    pub fn serialize<S: Serializer>(v: &Option<(u64, u32)>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some((base, limit)) => {
                let mut seq = s.serialize_seq(Some(2))?;
                seq.serialize_element(&to_string(*base))?;
                seq.serialize_element(limit)?;
                seq.end()
            }
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct T {
        #[serde(with = "super")]
        a: u64,
        #[serde(with = "super::option")]
        b: Option<u64>,
        #[serde(with = "super::vec")]
        c: Vec<u64>,
    }

    #[test]
    fn strings_out_strings_or_numbers_in() {
        let t = T {
            a: 0xffff_ffff_af63_fc9b,
            b: None,
            c: vec![0, 0x10],
        };
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(
            json,
            r#"{"a":"0xffffffffaf63fc9b","b":null,"c":["0x0","0x10"]}"#
        );
        assert_eq!(serde_json::from_str::<T>(&json).unwrap(), t);
        let old: T = serde_json::from_str(r#"{"a":18446744072357149851,"b":5,"c":[16]}"#).unwrap();
        assert_eq!(
            (old.a, old.b, old.c),
            (0xffff_ffff_af63_fc9b, Some(5), vec![16])
        );
        assert!(serde_json::from_str::<T>(r#"{"a":"ffff","b":null,"c":[]}"#).is_err());
    }
}
