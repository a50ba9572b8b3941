#![no_main]
//! Fuzz target `mce`: see `coroner_fuzz_entries::mce`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| coroner_fuzz_entries::mce(data));
