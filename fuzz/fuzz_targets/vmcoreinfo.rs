#![no_main]
//! Fuzz target `vmcoreinfo`: see `coroner_fuzz_entries::vmcoreinfo`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| coroner_fuzz_entries::vmcoreinfo(data));
