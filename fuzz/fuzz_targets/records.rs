#![no_main]
//! Fuzz target `records`: see `coroner_fuzz_entries::records`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| coroner_fuzz_entries::records(data));
