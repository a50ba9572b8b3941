use super::testutil::Builder;
use super::*;

/// 1 int, 2 long, 3 list_head {next, prev}, 4 ptr to 3, 5 anon union {a int; b long},
/// 6 struct module {state int @0, list @64 bits, union @192, flags:3 bitfield @256},
/// 7 typedef mod_t = 6, 8 enum state {LIVE 0, GOING 2}, 9 var current_task (ptr),
/// 10 datasec .data..percpu {9 at 0x1fb80}, 11 array of 56 char (int) .
fn sample() -> Vec<u8> {
    let mut b = Builder::new();
    b.ty("int", 1, 0, false, 4, &[(1 << 24) | 32]);
    b.ty("long", 1, 0, false, 8, &[(1 << 24) | 64]);
    let next = b.s("next");
    let prev = b.s("prev");
    b.ty("list_head", 4, 2, false, 16, &[next, 4, 0, prev, 4, 64]);
    b.ty("", 2, 0, false, 3, &[]);
    let a = b.s("a");
    let bb = b.s("b");
    b.ty("", 5, 2, false, 8, &[a, 1, 0, bb, 2, 0]);
    let state = b.s("state");
    let list = b.s("list");
    let flags = b.s("flags");
    b.ty(
        "module",
        4,
        4,
        true,
        40,
        &[
            state,
            1,
            0,
            list,
            3,
            64,
            0,
            5,
            192,
            flags,
            1,
            (3 << 24) | 258,
        ],
    );
    b.ty("mod_t", 8, 0, false, 6, &[]);
    let live = b.s("LIVE");
    let going = b.s("GOING");
    b.ty("state", 6, 2, false, 4, &[live, 0, going, 2]);
    b.ty("current_task", 14, 0, false, 4, &[1]);
    b.ty(".data..percpu", 15, 1, false, 0x40000, &[9, 0x1fb80, 8]);
    b.ty("", 3, 0, false, 0, &[1, 1, 56]);
    b.bytes()
}

#[test]
fn layouts_sizes_enums_and_percpu_variables() {
    let btf = Btf::parse(&sample()).unwrap();
    assert_eq!(btf.len(), 11);
    assert_eq!(btf.offset_of("module", "list").unwrap(), 8);
    assert_eq!(btf.offset_of("module", "list.prev").unwrap(), 16);
    // Through the anonymous union.
    assert_eq!(btf.offset_of("module", "b").unwrap(), 24);
    let f = btf.field("module", "flags").unwrap();
    assert_eq!((f.offset, f.bit, f.bits), (32, 2, 3));
    assert_eq!(btf.struct_size("module").unwrap(), 40);
    assert_eq!(btf.size_of(7).unwrap(), 40, "through the typedef");
    assert_eq!(btf.size_of(11).unwrap(), 4 * 56);
    assert_eq!(btf.size_of(4).unwrap(), 8);
    assert_eq!(btf.enum_value(Some("state"), "GOING").unwrap(), 2);
    assert_eq!(btf.enum_value(None, "LIVE").unwrap(), 0);
    assert_eq!(
        btf.section_var_offset(".data..percpu", "current_task")
            .unwrap(),
        0x1fb80
    );
    assert!(matches!(
        btf.field("module", "nope"),
        Err(LayoutError::NoMember { .. })
    ));
    assert!(matches!(
        btf.struct_named("task_struct"),
        Err(LayoutError::NoType { .. })
    ));
}

#[test]
fn damaged_btf_is_an_error_not_a_panic() {
    let good = sample();
    // Every truncation.
    for n in 0..good.len() {
        let _ = Btf::parse(&good[..n]);
    }
    assert!(matches!(
        Btf::parse(&good[..10]),
        Err(BtfError::BadHeader(_))
    ));
    assert!(matches!(
        Btf::parse(b"\x00\x00\x01\x00"),
        Err(BtfError::NotBtf(_))
    ));
    // A struct claiming 2^24-1 members in a small section.
    let mut big = good.clone();
    let info_at = 24 + 2 * 16 + 4; // the third record (list_head) after two ints
    big[info_at..info_at + 4].copy_from_slice(&((4u32 << 24) | 0x00ff_ffff).to_le_bytes());
    assert!(matches!(Btf::parse(&big), Err(BtfError::BadType { .. })));
    // A kind no kernel has, without a layout section to size it.
    let mut odd = good.clone();
    odd[info_at..info_at + 4].copy_from_slice(&(100u32 << 24).to_le_bytes());
    assert!(matches!(Btf::parse(&odd), Err(BtfError::BadType { .. })));
    // Every single-byte corruption.
    for i in 0..good.len() {
        let mut c = good.clone();
        c[i] ^= 0xff;
        if let Ok(b) = Btf::parse(&c) {
            let _ = b.field("module", "flags");
            let _ = b.size_of(11);
            let _ = b.enum_value(None, "GOING");
        }
    }
}

#[test]
fn alias_cycles_and_deep_arrays_end() {
    let mut b = Builder::new();
    b.ty("a", 8, 0, false, 2, &[]);
    b.ty("b", 8, 0, false, 1, &[]);
    b.ty("", 3, 0, false, 0, &[3, 1, 2]);
    let btf = Btf::parse(&b.bytes()).unwrap();
    assert!(btf.size_of(1).is_err());
    assert!(btf.size_of(3).is_err(), "an array of itself has no size");
}
