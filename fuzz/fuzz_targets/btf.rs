#![no_main]
//! Fuzz target `btf`: see `coroner_fuzz_entries::btf`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| coroner_fuzz_entries::btf(data));
