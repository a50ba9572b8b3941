//! qemu's `info mtree -f` (flat views of the guest's address spaces), and the owner of a
//! guest-physical address in the CPU's view of memory.

use serde::Serialize;

/// One range of a flat view: `00000000000a0000-00000000000bffff (prio 1, i/o): vga-lowmem`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Region {
    /// First address.
    #[serde(with = "coroner_formats::hex")]
    pub start: u64,
    /// Last address (inclusive).
    #[serde(with = "coroner_formats::hex")]
    pub end: u64,
    /// Priority.
    pub priority: i32,
    /// `ram`, `rom`, `romd`, `i/o` (MMIO), ...
    pub kind: String,
    /// The memory region's name.
    pub name: String,
    /// Offset into the region (`@offset`), when qemu printed one.
    #[serde(with = "coroner_formats::hex::option")]
    pub offset: Option<u64>,
    /// qemu registered the range with KVM as a memory slot (the ` KVM` suffix).
    pub kvm_slot: bool,
}

impl Region {
    /// True for ranges whose accesses go to a device model (MMIO), not to RAM.
    pub fn is_mmio(&self) -> bool {
        self.kind == "i/o" || self.kind == "romd"
    }
}

/// One `FlatView #N` block.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FlatView {
    /// Address spaces rendered by this view (`memory`, `cpu-memory-0`, `I/O`, ...).
    pub address_spaces: Vec<String>,
    /// Its ranges, in address order.
    pub regions: Vec<Region>,
}

/// Where a guest-physical address lands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Owner {
    /// The address.
    #[serde(with = "coroner_formats::hex")]
    pub gpa: u64,
    /// The region holding it; `None` when no range covers it (unassigned).
    pub region: Option<Region>,
    /// One line: `vga-lowmem (MMIO, 0xa0000-0xbffff)`, `pc.ram (RAM)`, `unassigned`.
    pub description: String,
}

/// Most views and ranges read (a real machine has a few hundred ranges).
const MAX_VIEWS: usize = 256;
const MAX_REGIONS: usize = 65_536;

/// Parses the text of `info mtree -f`.
pub fn parse_mtree(text: &str) -> Vec<FlatView> {
    let mut views: Vec<FlatView> = Vec::new();
    let mut regions = 0usize;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("FlatView #") {
            if views.len() >= MAX_VIEWS {
                break;
            }
            views.push(FlatView::default());
            continue;
        }
        let Some(view) = views.last_mut() else {
            continue;
        };
        if let Some(rest) = t.strip_prefix("AS \"") {
            if let Some((name, _)) = rest.split_once('"') {
                view.address_spaces.push(name.to_string());
            }
            continue;
        }
        if regions < MAX_REGIONS {
            if let Some(r) = parse_region(t) {
                regions += 1;
                view.regions.push(r);
            }
        }
    }
    views
}

fn parse_region(t: &str) -> Option<Region> {
    let (range, rest) = t.split_once(' ')?;
    let (start, end) = range.split_once('-')?;
    let start = u64::from_str_radix(start, 16).ok()?;
    let end = u64::from_str_radix(end, 16).ok()?;
    let rest = rest.trim_start().strip_prefix("(prio ")?;
    let (prio, rest) = rest.split_once(", ")?;
    let (kind, detail) = rest.split_once("): ")?;
    // `pc.ram @00000000000c0000 KVM`: name, optional offset, optional KVM-slot marker.
    let mut words = detail.split_whitespace();
    let name = words.next()?.to_string();
    let mut offset = None;
    let mut kvm_slot = false;
    for w in words {
        if let Some(o) = w.strip_prefix('@') {
            offset = u64::from_str_radix(o, 16).ok();
        } else if w == "KVM" {
            kvm_slot = true;
        }
    }
    Some(Region {
        start,
        end,
        priority: prio.trim().parse().ok()?,
        kind: kind.trim().to_string(),
        name,
        offset,
        kvm_slot,
    })
}

/// The owner of `gpa` in the view that renders the `memory` address space (what the
/// vCPUs see).
pub fn owner(views: &[FlatView], gpa: u64) -> Option<Owner> {
    let view = views
        .iter()
        .find(|v| v.address_spaces.iter().any(|a| a == "memory"))?;
    let region = view
        .regions
        .iter()
        .find(|r| (r.start..=r.end).contains(&gpa))
        .cloned();
    let description = match &region {
        Some(r) => format!(
            "{} ({}, {:#x}-{:#x})",
            r.name,
            match r.kind.as_str() {
                "i/o" => "MMIO: a device model handles every access",
                "ram" => "RAM",
                "rom" => "ROM",
                "romd" => "ROM device",
                other => other,
            },
            r.start,
            r.end
        ),
        None => "unassigned (no region: reads return all ones, writes are dropped)".into(),
    };
    Some(Owner {
        gpa,
        region,
        description,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// From a qemu 7.2 pc machine with `-vga std` (the bare-metal fixture's machine).
    const MTREE: &str = "\
FlatView #0
 AS \"memory\", root: system
 AS \"cpu-memory-0\", root: system
 Root memory region: system
  0000000000000000-000000000009ffff (prio 0, ram): pc.ram KVM
  00000000000a0000-00000000000bffff (prio 1, i/o): vga-lowmem
  00000000000c0000-00000000000c9fff (prio 0, rom): pc.ram @00000000000c0000 KVM
  00000000000ca000-00000000000cdfff (prio 0, ram): pc.ram @00000000000ca000
  00000000fd000000-00000000fdffffff (prio 1, ram): vga.vram
  00000000fffc0000-00000000ffffffff (prio 0, romd): pc.bios

FlatView #1
 AS \"I/O\", root: io
 Root memory region: io
  0000000000000000-0000000000000007 (prio 0, i/o): dma-chan
";

    #[test]
    fn owners_in_the_memory_view() {
        let views = parse_mtree(MTREE);
        assert_eq!(views.len(), 2);
        assert_eq!(views[0].address_spaces, ["memory", "cpu-memory-0"]);
        assert_eq!(views[0].regions.len(), 6);
        let o = owner(&views, 0xa0010).unwrap();
        let r = o.region.as_ref().unwrap();
        assert_eq!(
            (r.name.as_str(), r.kind.as_str(), r.priority),
            ("vga-lowmem", "i/o", 1)
        );
        assert!(r.is_mmio());
        assert!(
            o.description.starts_with("vga-lowmem (MMIO"),
            "{}",
            o.description
        );
        let ram = owner(&views, 0x7c00).unwrap().region.unwrap();
        assert_eq!(
            (ram.name.as_str(), ram.kvm_slot, ram.offset),
            ("pc.ram", true, None)
        );
        let rom = owner(&views, 0xc0000).unwrap().region.unwrap();
        assert_eq!((rom.offset, rom.kind.as_str()), (Some(0xc0000), "rom"));
        let gap = owner(&views, 0xd0000).unwrap();
        assert!(gap.region.is_none());
        assert!(gap.description.starts_with("unassigned"));
        // The I/O view is never used for memory addresses.
        assert!(owner(&views[1..], 0).is_none());
    }

    #[test]
    fn garbage_is_ignored() {
        let views =
            parse_mtree("junk\nFlatView #0\n zz-yy (prio x, ram): a\n 0-1 (prio 0 ram) b\n");
        assert_eq!(views.len(), 1);
        assert!(views[0].regions.is_empty());
        assert!(parse_mtree("").is_empty());
    }
}
