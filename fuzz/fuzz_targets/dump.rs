#![no_main]
//! Fuzz target `dump`: see `coroner_fuzz_entries::dump`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| coroner_fuzz_entries::dump(data));
