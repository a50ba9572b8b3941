//! [`Kallsyms::from_vmcoreinfo`]: the tables at the addresses Linux 6.0+ exports in
//! VMCOREINFO (`SYMBOL(kallsyms_names|kallsyms_num_syms|kallsyms_token_table|
//! kallsyms_token_index|kallsyms_offsets|kallsyms_relative_base|kallsyms_addresses)`).
//!
//! `kallsyms_markers` is not exported; a full sequential decode does not need it, but the
//! names must end where it starts (right after them, 8-aligned) and agree with it.

use super::addresses::{AddrSource, Anchor, TableOrder};
use super::{assemble, is_6_1_or_later, FoundBy, Kallsyms, KallsymsError, Located};
use super::{MAX_NAMES_BYTES, MAX_SYMS};
use crate::kmem::{KernelMem, VirtAddr};
use crate::vmcoreinfo::Vmcoreinfo;

impl Kallsyms {
    /// Reads the kallsyms tables at the addresses VMCOREINFO gives (Linux 6.0+).
    ///
    /// The address encoding is chosen by consistency with `SYMBOL(_stext)`; the name-length
    /// form by where the names end. Fails with [`KallsymsError::MissingSymbol`] on kernels
    /// that do not export the tables (use [`Kallsyms::scan`] there).
    pub fn from_vmcoreinfo(
        mem: &dyn KernelMem,
        vmci: &Vmcoreinfo,
    ) -> Result<Kallsyms, KallsymsError> {
        let sym = |name: &'static str| {
            vmci.symbol(name)
                .map(VirtAddr)
                .ok_or(KallsymsError::MissingSymbol { name })
        };
        let names = sym("kallsyms_names")?;
        let num_syms_va = sym("kallsyms_num_syms")?;
        let token_table = sym("kallsyms_token_table")?;
        let token_index = sym("kallsyms_token_index")?;
        let order = |va: VirtAddr| {
            if va < names {
                TableOrder::AddressesFirst
            } else {
                TableOrder::NamesFirst
            }
        };
        let mut sources = Vec::new();
        if let Some(va) = vmci.symbol("kallsyms_offsets").map(VirtAddr) {
            sources.push(AddrSource::Offsets {
                va,
                base: vmci.symbol("kallsyms_relative_base").map(VirtAddr),
                order: order(va),
            });
        }
        if let Some(va) = vmci.symbol("kallsyms_addresses").map(VirtAddr) {
            sources.push(AddrSource::Absolute {
                va,
                order: order(va),
            });
        }
        if sources.is_empty() {
            return Err(KallsymsError::MissingSymbol {
                name: "kallsyms_offsets",
            });
        }
        let n = mem
            .read_u32(num_syms_va)
            .map_err(|source| KallsymsError::Read {
                what: "kallsyms_num_syms",
                va: num_syms_va,
                source,
            })?;
        if n == 0 || n > MAX_SYMS {
            return Err(KallsymsError::NumSyms {
                found: u64::from(n),
                va: num_syms_va,
                limit: u64::from(MAX_SYMS),
            });
        }
        // The names are followed by the markers and then the token table in every layout.
        let names_bound = match token_table.0.checked_sub(names.0) {
            Some(gap) if gap > 0 => gap,
            _ => MAX_NAMES_BYTES,
        };
        assemble(
            mem,
            Located {
                found_by: FoundBy::Vmcoreinfo,
                origin: "from VMCOREINFO SYMBOL(kallsyms_*) (6.0+)".to_string(),
                num_syms: n,
                names,
                names_bound,
                token_table,
                token_index,
                tokens: None,
                sources,
                markers: None,
                prefer_two: is_6_1_or_later(vmci.osrelease()),
                anchor: Anchor {
                    stext: vmci.symbol("_stext"),
                    image: None,
                },
            },
        )
    }
}
