use super::*;
use crate::btf::testutil::{Basics, Builder};
use crate::kmem::SliceKernelMem;

/// BTF of a 6.1-shaped `struct module` (core_layout, 160 bytes).
fn module_btf() -> Btf {
    let (
        mut b,
        Basics {
            int,
            ulong,
            list_head,
            ch,
            void_ptr,
        },
    ) = Builder::with_basics();
    let name = b.add("", 3, 0, false, 0, &[ch, int, 56]);
    let layout = b.structure(
        "module_layout",
        16,
        &[
            ("base", void_ptr, 0),
            ("size", int, 8),
            ("text_size", int, 12),
        ],
    );
    let atomic = b.structure("", 4, &[("counter", int, 0)]);
    let atomic_t = b.add("atomic_t", 8, 0, false, atomic, &[]);
    let kallsyms = b.structure(
        "mod_kallsyms",
        32,
        &[
            ("symtab", void_ptr, 0),
            ("num_symtab", int, 8),
            ("strtab", void_ptr, 16),
            ("typetab", void_ptr, 24),
        ],
    );
    let (live, coming) = (b.s("MODULE_STATE_LIVE"), b.s("MODULE_STATE_COMING"));
    let state = b.add("module_state", 6, 2, false, 4, &[live, 0, coming, 1]);
    b.structure(
        "module",
        160,
        &[
            ("state", state, 0),
            ("list", list_head, 8),
            ("name", name, 24),
            ("core_layout", layout, 80),
            ("init_layout", layout, 96),
            ("refcnt", atomic_t, 112),
            ("taints", ulong, 120),
            ("core_kallsyms", kallsyms, 128),
        ],
    );
    Btf::parse(&b.bytes()).unwrap()
}

const HEAD: u64 = 0xffff_ffff_8200_0000;
const M1: u64 = 0xffff_ffff_c000_1000;
const M2: u64 = 0xffff_ffff_c000_3000;

fn put(b: &mut [u8], off: usize, v: &[u8]) {
    b[off..off + v.len()].copy_from_slice(v);
}

/// A module at `at` (a 0x2000-byte piece: the struct, then its symbols), linked to `next`.
fn module(at: u64, name: &str, next: u64, taints: u64) -> (VirtAddr, Vec<u8>) {
    let mut b = vec![0u8; 0x2000];
    put(&mut b, 8, &next.to_le_bytes());
    put(&mut b, 24, name.as_bytes());
    put(&mut b, 80, &at.to_le_bytes()); // core base: the module's own page
    put(&mut b, 88, &0x1000u32.to_le_bytes());
    put(&mut b, 92, &0x800u32.to_le_bytes());
    put(&mut b, 104, &0x200u32.to_le_bytes()); // init size
    put(&mut b, 112, &3u32.to_le_bytes()); // refcnt: 2 users
    put(&mut b, 120, &taints.to_le_bytes());
    put(&mut b, 128, &(at + 0x400).to_le_bytes());
    put(&mut b, 136, &3u32.to_le_bytes());
    put(&mut b, 144, &(at + 0x600).to_le_bytes());
    put(&mut b, 152, &(at + 0x700).to_le_bytes());
    // Elf64_Sym: an undefined one, then two functions.
    let syms: [(u32, u8, u16, u64, u64); 3] = [
        (0, 0, 0, 0, 0),
        (1, 0x02, 1, at + 0x100, 0x20),
        (10, 0x12, 1, at + 0x120, 0x40),
    ];
    for (i, (n, info, shndx, value, size)) in syms.iter().enumerate() {
        let o = 0x400 + 24 * i;
        put(&mut b, o, &n.to_le_bytes());
        b[o + 4] = *info;
        put(&mut b, o + 6, &shndx.to_le_bytes());
        put(&mut b, o + 8, &value.to_le_bytes());
        put(&mut b, o + 16, &size.to_le_bytes());
    }
    put(&mut b, 0x600, b"\0foo_func\0bar_func\0");
    put(&mut b, 0x700, b"UtT");
    (VirtAddr(at), b)
}

fn memory(head_next: u64, m1_next: u64, m2_next: u64) -> SliceKernelMem {
    SliceKernelMem::new(vec![
        (VirtAddr(HEAD), head_next.to_le_bytes().to_vec()),
        module(M1, "m1", m1_next, (1 << 12) | (1 << 13)),
        module(M2, "m2", m2_next, 0),
    ])
}

#[test]
fn modules_their_fields_and_symbols() {
    let btf = module_btf();
    let mem = memory(M1 + 8, M2 + 8, HEAD);
    let list = read_modules(&mem, &btf, HEAD).unwrap();
    assert!(list.diagnostics.is_empty(), "{:?}", list.diagnostics);
    let names: Vec<&str> = list.modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["m1", "m2"]);
    let m1 = &list.modules[0];
    assert_eq!((m1.address, m1.size, m1.text_size), (M1, 0x1200, 0x800));
    assert_eq!(m1.refcnt, Some(2));
    assert_eq!(m1.taints, "OE");
    assert_eq!(m1.state, "Live");
    assert_eq!(m1.symbol_count, 2, "the undefined symbol is left out");
    assert_eq!(
        list.format_addr(M2 + 0x124).as_deref(),
        Some("bar_func+0x4/0x6e0 [m2]"),
        "sized to the end of the text, as the kernel sizes its last symbol"
    );
    assert_eq!(
        list.format_addr(M2 + 0x104).as_deref(),
        Some("foo_func+0x4/0x20 [m2]"),
        "sized to the next symbol"
    );
    assert_eq!(
        list.format_return(M2 + 0x120).as_deref(),
        Some("foo_func+0x20/0x20 [m2]"),
        "a call that ends foo_func returns to bar_func's address"
    );
    assert_eq!(
        list.symbolize(M1 + 0x100).map(|(s, _, _)| s.kind),
        Some('t')
    );
    assert!(list.format_addr(M1 + 0x800).is_none(), "past the text");
    assert_eq!(
        list.lookup("m2:foo_func").map(|(s, _)| s.addr),
        Some(M2 + 0x100)
    );
}

#[test]
fn damaged_lists_end_with_a_diagnostic() {
    let btf = module_btf();
    // A loop that never comes back to the head.
    let list = read_modules(&memory(M1 + 8, M2 + 8, M1 + 8), &btf, HEAD).unwrap();
    assert_eq!(list.modules.len(), 2);
    assert!(
        list.diagnostics[0].contains("does not return"),
        "{:?}",
        list.diagnostics
    );
    // A link into nowhere.
    let list = read_modules(&memory(M1 + 8, 0xdead_0000, HEAD), &btf, HEAD).unwrap();
    assert_eq!(list.modules.len(), 1);
    assert!(
        list.diagnostics[0].contains("cut there"),
        "{:?}",
        list.diagnostics
    );
    // An unreadable head is an error.
    assert!(matches!(
        read_modules(&memory(M1 + 8, M2 + 8, HEAD), &btf, 0x1000),
        Err(ModulesError::Unreadable { .. })
    ));
    // BTF without struct module.
    let mut b = Builder::new();
    b.add("int", 1, 0, false, 4, &[32]);
    let bare = Btf::parse(&b.bytes()).unwrap();
    assert!(matches!(
        read_modules(&memory(M1 + 8, M2 + 8, HEAD), &bare, HEAD),
        Err(ModulesError::Layout(_))
    ));
}
