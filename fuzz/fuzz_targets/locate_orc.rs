#![no_main]
//! Fuzz target `locate_orc`: see `coroner_fuzz_entries::locate_orc`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| coroner_fuzz_entries::locate_orc(data));
