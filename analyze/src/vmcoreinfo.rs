//! VMCOREINFO: the kernel's `KEY=value` description of itself (symbol addresses, struct
//! offsets, KASLR offset), as text.
//!
//! Line formats (`include/linux/vmcore_info.h`): `SYMBOL(x)=` hex without `0x`,
//! `SIZE(x)=`/`OFFSET(s.f)=`/`LENGTH(x)=` decimal, `NUMBER(x)=` signed decimal or `0x` hex,
//! `KERNELOFFSET=` hex, `OSRELEASE=`, `PAGESIZE=`.

use serde::Serialize;

/// Parsed VMCOREINFO text.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Vmcoreinfo {
    /// The text as found.
    pub text: String,
    #[serde(skip)]
    entries: Vec<(String, String)>,
}

/// The most lines kept (the kernel's page holds fewer than 200).
const MAX_LINES: usize = 4096;

fn parse_hex(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s.strip_prefix("0x").unwrap_or(s);
    u64::from_str_radix(s, 16).ok()
}

fn parse_dec(s: &str) -> Option<u64> {
    s.trim().parse().ok()
}

impl Vmcoreinfo {
    /// Parses `KEY=value` lines; lines without `=` are ignored, a NUL ends the text.
    pub fn parse(text: &str) -> Self {
        let text = text.split('\0').next().unwrap_or_default();
        let entries = text
            .lines()
            .take(MAX_LINES)
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self {
            text: text.to_string(),
            entries,
        }
    }

    /// The value of `key`, the first occurrence.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Number of `KEY=value` lines.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there is no line.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `OSRELEASE=`.
    pub fn osrelease(&self) -> Option<&str> {
        self.get("OSRELEASE")
    }

    /// `SYMBOL(name)=`: an address (or, for arrays, a pointer value).
    pub fn symbol(&self, name: &str) -> Option<u64> {
        self.get(&format!("SYMBOL({name})")).and_then(parse_hex)
    }

    /// `SIZE(name)=`.
    pub fn size(&self, name: &str) -> Option<u64> {
        self.get(&format!("SIZE({name})")).and_then(parse_dec)
    }

    /// `OFFSET(struct.member)=`.
    pub fn offset(&self, field: &str) -> Option<u64> {
        self.get(&format!("OFFSET({field})")).and_then(parse_dec)
    }

    /// `LENGTH(name)=`.
    pub fn length(&self, name: &str) -> Option<u64> {
        self.get(&format!("LENGTH({name})")).and_then(parse_dec)
    }

    /// `NUMBER(name)=`: signed decimal, or hex with `0x`.
    pub fn number(&self, name: &str) -> Option<i64> {
        let v = self.get(&format!("NUMBER({name})"))?.trim();
        match v.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).ok().map(|u| u as i64),
            None => v.parse().ok(),
        }
    }

    /// `KERNELOFFSET=`: the KASLR offset of the kernel image.
    pub fn kernel_offset(&self) -> Option<u64> {
        self.get("KERNELOFFSET").and_then(parse_hex)
    }

    /// True when the text is the kernel's format strings (`OSRELEASE=%s`) rather than
    /// values: a copy of `.rodata`, not a VMCOREINFO.
    pub fn is_format_strings(&self) -> bool {
        self.entries.iter().any(|(_, v)| v.starts_with('%'))
    }

    /// True when the text has what a real VMCOREINFO always has.
    pub fn looks_valid(&self) -> bool {
        !self.is_format_strings()
            && self.osrelease().is_some_and(|r| !r.is_empty())
            && self.get("PAGESIZE").and_then(parse_dec).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "OSRELEASE=6.1.0-56-amd64\nBUILD-ID=4e1f\nPAGESIZE=4096\n\
SYMBOL(init_uts_ns)=ffffffff9a813e40\nSYMBOL(prb)=ffffffff9a6c2b58\nSIZE(printk_info)=88\n\
OFFSET(prb_desc.state_var)=0\nLENGTH(printk_info_device)=48\nNUMBER(phys_base)=-1073741824\n\
NUMBER(VMALLOC_START)=0xffffc90000000000\nNUMBER(pgtable_l5_enabled)=0\nKERNELOFFSET=18000000\n\0garbage";

    #[test]
    fn parses_every_line_kind() {
        let v = Vmcoreinfo::parse(SAMPLE);
        assert!(v.looks_valid());
        assert_eq!(v.osrelease(), Some("6.1.0-56-amd64"));
        assert_eq!(v.symbol("prb"), Some(0xffff_ffff_9a6c_2b58));
        assert_eq!(v.size("printk_info"), Some(88));
        assert_eq!(v.offset("prb_desc.state_var"), Some(0));
        assert_eq!(v.length("printk_info_device"), Some(48));
        assert_eq!(v.number("phys_base"), Some(-1_073_741_824));
        assert_eq!(
            v.number("VMALLOC_START"),
            Some(0xffff_c900_0000_0000u64 as i64)
        );
        assert_eq!(v.kernel_offset(), Some(0x1800_0000));
        assert!(!v.text.contains("garbage"));
    }

    #[test]
    fn format_strings_are_not_a_vmcoreinfo() {
        let v = Vmcoreinfo::parse("OSRELEASE=%s\nPAGESIZE=%ld\nSYMBOL(%s)=%lx\n");
        assert!(v.is_format_strings());
        assert!(!v.looks_valid());
        assert!(!Vmcoreinfo::parse("hello").looks_valid());
    }
}
