#![no_main]
//! Fuzz target `container`: see `coroner_fuzz_entries::container`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| coroner_fuzz_entries::container(data));
