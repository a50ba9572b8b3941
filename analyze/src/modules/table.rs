//! The module table as `coroner modules` prints it and the TUI's Modules pane shows it:
//! the same header and rows in both, 80 columns wide for the usual module names. Rows
//! hold guest text (names, states): callers escape them for their output.

use super::ModuleList;

/// The header line and one line per module: name, size, users (as `/proc/modules`
/// counts them), state, base address, taint letters, number of symbols.
pub fn lines(list: &ModuleList) -> Vec<String> {
    // As wide as the longest name (the kernel's limit is 55 bytes), at least the header.
    let w = list
        .modules
        .iter()
        .map(|m| m.name.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(4, 55);
    let mut out = vec![format!(
        "{:<w$} {:>8} {:>5} {:<8} {:<16} {:<6} {:>7}",
        "NAME", "SIZE", "USERS", "STATE", "ADDRESS", "TAINTS", "SYMBOLS"
    )];
    for m in &list.modules {
        out.push(format!(
            "{:<w$} {:>8} {:>5} {:<8} {:016x} {:<6} {:>7}",
            m.name,
            m.size,
            m.refcnt
                .map(|r| r.to_string())
                .unwrap_or_else(|| "-".into()),
            m.state,
            m.address,
            m.taints,
            m.symbol_count
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::Module;

    fn module(name: &str) -> Module {
        Module {
            name: name.into(),
            state: "Live".into(),
            address: 0xffff_ffff_c061_c000,
            size: 45056,
            text_size: 8192,
            refcnt: Some(0),
            taints: "OE".into(),
            struct_module: 0,
            symbol_count: 196,
            symbols: Vec::new(),
        }
    }

    #[test]
    fn the_table_fits_its_names() {
        let list = ModuleList {
            modules: vec![module("watchdog"), module("virtio_pci_modern_dev")],
            ..ModuleList::default()
        };
        let l = lines(&list);
        assert_eq!(
            l[1],
            "watchdog                 45056     0 Live     ffffffffc061c000 OE         196"
        );
        assert!(l.iter().all(|r| r.len() <= 78), "{l:#?}");
        assert_eq!(
            l[0].find("SIZE").unwrap() + 4,
            l[2].find("45056").unwrap() + 5
        );
    }
}
