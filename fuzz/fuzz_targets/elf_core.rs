#![no_main]
//! Fuzz target `elf_core`: see `coroner_fuzz_entries::elf_core`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| coroner_fuzz_entries::elf_core(data));
