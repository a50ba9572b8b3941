#![no_main]
//! Fuzz target `kdump_stream`: see `coroner_fuzz_entries::kdump_stream`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| coroner_fuzz_entries::kdump_stream(data));
