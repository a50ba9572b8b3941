#![no_main]
//! Fuzz target `mtree`: see `coroner_fuzz_entries::mtree`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| coroner_fuzz_entries::mtree(data));
