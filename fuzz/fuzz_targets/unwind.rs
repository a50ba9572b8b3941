#![no_main]
//! Fuzz target `unwind`: see `coroner_fuzz_entries::unwind`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| coroner_fuzz_entries::unwind(data));
