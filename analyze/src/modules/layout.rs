//! Where the fields of `struct module` are, from BTF: the list link, name, state, memory
//! regions (`mem[]` since 6.4, `core_layout`/`init_layout` before), reference count,
//! taints and the module's own symbol table (`core_kallsyms`).

use crate::btf::{Btf, LayoutError};

/// `struct module`'s memory regions, by kernel generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Regions {
    /// 6.4+: `struct module_memory mem[MOD_MEM_NUM_TYPES]`, each `{ base, size }`.
    Mem {
        /// Offset of `mem`.
        mem: u64,
        /// `sizeof(struct module_memory)`.
        stride: u64,
        /// Offsets of `base` and `size` in it.
        base: u64,
        /// See `base`.
        size: u64,
        /// Indexes of the core regions (text, data, rodata, ro-after-init) and the
        /// init ones, from `enum mod_mem_type`.
        core: Vec<u64>,
        /// See `core`.
        init: Vec<u64>,
        /// Index of `MOD_TEXT`.
        text: u64,
    },
    /// 4.5 to 6.3: `core_layout` and `init_layout`, each `{ base, size, text_size, ... }`.
    Layout {
        /// Offsets of `core_layout.base`, `.size` and `.text_size`.
        core_base: u64,
        /// See `core_base`.
        core_size: u64,
        /// See `core_base`.
        core_text_size: u64,
        /// Offsets of `init_layout.base` and `.size`.
        init_base: u64,
        /// See `init_base`.
        init_size: u64,
    },
}

/// The offsets needed to read a module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleLayout {
    /// `list` (a `list_head`).
    pub list: u64,
    /// `name` (a char array).
    pub name: u64,
    /// Its length.
    pub name_len: u64,
    /// `state` (`enum module_state`).
    pub state: u64,
    /// Names of the states by value.
    pub state_names: Vec<(String, i64)>,
    /// The memory regions.
    pub regions: Regions,
    /// `refcnt.counter` (with `CONFIG_MODULE_UNLOAD`).
    pub refcnt: Option<u64>,
    /// `taints` (an `unsigned long` of `TAINT_*` bits).
    pub taints: Option<u64>,
    /// `core_kallsyms.symtab`, `.num_symtab`, `.strtab`, `.typetab` (5.2+).
    pub symtab: u64,
    /// See `symtab`.
    pub num_symtab: u64,
    /// See `symtab`.
    pub strtab: u64,
    /// See `symtab`.
    pub typetab: Option<u64>,
}

impl ModuleLayout {
    /// The layout of `struct module` in `btf`.
    pub fn from_btf(btf: &Btf) -> Result<ModuleLayout, LayoutError> {
        let off = |path: &str| btf.offset_of("module", path);
        let name = btf.field("module", "name")?;
        let regions = if btf.has_field("module", "mem") {
            let mem = btf.field("module", "mem")?;
            let stride = btf.struct_size("module_memory")?;
            let types = btf.enum_values("mod_mem_type")?;
            let idx = |n: &str| types.iter().find(|(k, _)| k == n).map(|&(_, v)| v as u64);
            let pick = |names: &[&str]| names.iter().filter_map(|n| idx(n)).collect::<Vec<_>>();
            Regions::Mem {
                mem: mem.offset,
                stride,
                base: btf.offset_of("module_memory", "base")?,
                size: btf.offset_of("module_memory", "size")?,
                core: pick(&["MOD_TEXT", "MOD_DATA", "MOD_RODATA", "MOD_RO_AFTER_INIT"]),
                init: pick(&["MOD_INIT_TEXT", "MOD_INIT_DATA", "MOD_INIT_RODATA"]),
                text: idx("MOD_TEXT").ok_or(LayoutError::NoValue {
                    ty: "mod_mem_type".into(),
                    value: "MOD_TEXT".into(),
                })?,
            }
        } else {
            Regions::Layout {
                core_base: off("core_layout.base")?,
                core_size: off("core_layout.size")?,
                core_text_size: off("core_layout.text_size")?,
                init_base: off("init_layout.base")?,
                init_size: off("init_layout.size")?,
            }
        };
        Ok(ModuleLayout {
            list: off("list")?,
            name: name.offset,
            name_len: btf.size_of(name.type_id)?,
            state: off("state")?,
            state_names: btf.enum_values("module_state").unwrap_or_default(),
            regions,
            refcnt: off("refcnt.counter").ok(),
            taints: off("taints").ok(),
            symtab: off("core_kallsyms.symtab")?,
            num_symtab: off("core_kallsyms.num_symtab")?,
            strtab: off("core_kallsyms.strtab")?,
            typetab: off("core_kallsyms.typetab").ok(),
        })
    }

    /// One line for the evidence list.
    pub fn describe(&self) -> String {
        let regions = match &self.regions {
            Regions::Mem { mem, .. } => format!("mem[] at {mem} (6.4+ layout)"),
            Regions::Layout { core_base, .. } => {
                format!("core_layout.base at {core_base} (4.5-6.3 layout)")
            }
        };
        format!(
            "struct module from BTF: list at {}, name at {}, state at {}, {regions}, core_kallsyms.symtab at {}",
            self.list, self.name, self.state, self.symtab
        )
    }
}
