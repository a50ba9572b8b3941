//! Raw BTF built in tests (this crate's and the readers' of kernel structures).

/// Builds raw BTF: types as (name, info, size_or_type, tail words), strings appended.
#[derive(Default)]
pub struct Builder {
    types: Vec<u8>,
    strings: Vec<u8>,
    count: u32,
}

impl Builder {
    pub fn new() -> Self {
        Builder {
            types: Vec::new(),
            strings: vec![0],
            count: 0,
        }
    }
    pub fn s(&mut self, name: &str) -> u32 {
        if name.is_empty() {
            return 0;
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        off
    }
    pub fn ty(&mut self, name: &str, kind: u32, vlen: u32, flag: bool, size: u32, tail: &[u32]) {
        let n = self.s(name);
        let info = (kind << 24) | vlen | if flag { 1 << 31 } else { 0 };
        for w in [n, info, size].iter().chain(tail) {
            self.types.extend_from_slice(&w.to_le_bytes());
        }
    }
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC_LE);
        out.extend_from_slice(&[1, 0]);
        for w in [
            24u32,
            0,
            self.types.len() as u32,
            self.types.len() as u32,
            self.strings.len() as u32,
        ] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&self.types);
        out.extend_from_slice(&self.strings);
        out
    }
}

const MAGIC_LE: [u8; 2] = [0x9f, 0xeb];

impl Builder {
    /// Adds a type and returns its id.
    pub fn add(
        &mut self,
        name: &str,
        kind: u32,
        vlen: u32,
        flag: bool,
        size: u32,
        tail: &[u32],
    ) -> u32 {
        self.ty(name, kind, vlen, flag, size, tail);
        self.count += 1;
        self.count
    }

    /// A struct of `size` bytes with members (name, type, byte offset).
    pub fn structure(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
        let mut tail = Vec::new();
        for &(m, t, off) in members {
            tail.push(self.s(m));
            tail.push(t);
            tail.push(off * 8);
        }
        self.add(name, 4, members.len() as u32, false, size, &tail)
    }
}

/// The ids of the types every kernel structure in the tests is made of.
pub struct Basics {
    /// `int`.
    pub int: u32,
    /// `unsigned long`.
    pub ulong: u32,
    /// `struct list_head { next, prev }`.
    pub list_head: u32,
    /// `char`.
    pub ch: u32,
    /// `void *`.
    pub void_ptr: u32,
}

impl Builder {
    /// A builder that already holds `int`, `unsigned long`, `list_head`, `char` and
    /// `void *`.
    pub fn with_basics() -> (Builder, Basics) {
        let mut b = Builder::new();
        let int = b.add("int", 1, 0, false, 4, &[(1 << 24) | 32]);
        let ulong = b.add("unsigned long", 1, 0, false, 8, &[64]);
        // The pointer is to the next type, the list_head itself.
        let ptr_list = b.add("", 2, 0, false, ulong + 2, &[]);
        let list_head = b.structure(
            "list_head",
            16,
            &[("next", ptr_list, 0), ("prev", ptr_list, 8)],
        );
        let ch = b.add("char", 1, 0, false, 1, &[8]);
        let void_ptr = b.add("", 2, 0, false, 0, &[]);
        (
            b,
            Basics {
                int,
                ulong,
                list_head,
                ch,
                void_ptr,
            },
        )
    }
}
