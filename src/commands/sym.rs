//! `coroner sym`: kernel addresses to `name+0xoff/0xsize`, names to addresses.

use coroner_analyze::escape_control;
use serde::Serialize;

use super::kernel;
use super::output::{print_json, print_text};
use crate::cli::SymArgs;
use crate::exit::ExitClass;

#[derive(Serialize)]
struct Answer {
    query: String,
    #[serde(with = "coroner_formats::hex::option")]
    address: Option<u64>,
    symbol: Option<String>,
    offset: Option<u64>,
    size: Option<u64>,
    kind: Option<char>,
    /// The module the symbol belongs to, for module code and data.
    module: Option<String>,
}

impl Answer {
    /// `query` answered: symbol `name` (`size` bytes, nm type `kind`, of `module`)
    /// holds `address` at `offset`.
    fn found(
        query: &str,
        address: u64,
        offset: u64,
        name: &str,
        size: u64,
        kind: char,
        module: Option<&str>,
    ) -> Self {
        Answer {
            query: query.into(),
            address: Some(address),
            symbol: Some(name.into()),
            offset: Some(offset),
            size: Some(size),
            kind: Some(kind),
            module: module.map(String::from),
        }
    }

    fn none(query: &str, address: Option<u64>) -> Self {
        Answer {
            query: query.into(),
            address,
            symbol: None,
            offset: None,
            size: None,
            kind: None,
            module: None,
        }
    }
}

#[derive(Serialize)]
struct SymJson<'a> {
    how: &'a str,
    symbols: usize,
    answers: Vec<Answer>,
}

fn parse_addr(s: &str) -> Option<u64> {
    let h = s.strip_prefix("0x").unwrap_or(s);
    // A name like `add` is hex too: only long hex strings or 0x-prefixed ones are addresses.
    (s.starts_with("0x") || h.len() >= 8)
        .then(|| u64::from_str_radix(h, 16).ok())
        .flatten()
}

pub fn run(args: &SymArgs) -> anyhow::Result<ExitClass> {
    let core = kernel::open(&args.dump.file)?;
    let session = kernel::session(&core, args.kernel.ignore_vmcoreinfo);
    kernel::view(&session)?;
    let found = session.kallsyms().map_err(|e| {
        kernel::missing(
            e,
            format!("no kallsyms table found in {}", args.dump.file.display()),
        )
    })?;
    let (ks, how) = (&found.table, &found.how);
    let mut answers = Vec::new();
    for q in &args.what {
        // kallsyms first; module symbols (from each module's own table) only when it has
        // no answer, so a kernel without BTF still answers for the core kernel.
        let modules = || session.modules().ok();
        let a = match parse_addr(q) {
            Some(addr) => match ks.symbolize(addr) {
                Some((s, off)) => Answer::found(q, addr, off, &s.name, s.size, s.kind, None),
                None => match modules().and_then(|m| m.symbolize(addr)) {
                    Some((s, off, m)) => {
                        Answer::found(q, addr, off, &s.name, s.size, s.kind, Some(&m.name))
                    }
                    None => Answer::none(q, Some(addr)),
                },
            },
            None => match ks.lookup(q) {
                Some(s) => Answer::found(q, s.addr, 0, &s.name, s.size, s.kind, None),
                None => match modules().and_then(|m| m.lookup(q)) {
                    Some((s, m)) => {
                        Answer::found(q, s.addr, 0, &s.name, s.size, s.kind, Some(&m.name))
                    }
                    None => Answer::none(q, None),
                },
            },
        };
        answers.push(a);
    }
    let missing = answers.iter().filter(|a| a.symbol.is_none()).count();
    if args.format.json {
        print_json(&SymJson {
            how,
            symbols: ks.len(),
            answers,
        })?;
    } else {
        let mut text = String::new();
        for a in &answers {
            let line = match (&a.symbol, a.address) {
                (Some(name), Some(addr)) => format!(
                    "{addr:016x} {}+{:#x}/{:#x}{} ({})",
                    escape_control(name),
                    a.offset.unwrap_or(0),
                    a.size.unwrap_or(0),
                    a.module
                        .as_ref()
                        .map(|m| format!(" [{}]", escape_control(m)))
                        .unwrap_or_default(),
                    a.kind.unwrap_or('?')
                ),
                (None, Some(addr)) => format!("{addr:016x} not in any kernel symbol"),
                _ => format!("{}: no such symbol", escape_control(&a.query)),
            };
            text.push_str(&line);
            text.push('\n');
        }
        print_text(&text)?;
    }
    Ok(if missing > 0 {
        ExitClass::NotFound
    } else {
        ExitClass::Ok
    })
}
