#![no_main]
//! Fuzz target `tui`: see `coroner_fuzz_entries::tui`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| coroner_fuzz_entries::tui(data));
