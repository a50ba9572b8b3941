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
