#![no_main]
//! Fuzz target `qmp`: see `coroner_fuzz_entries::qmp`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| coroner_fuzz_entries::qmp(data));
