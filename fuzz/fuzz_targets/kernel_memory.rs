#![no_main]
//! Fuzz target `kernel_memory`: see `coroner_fuzz_entries::kernel_memory`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| coroner_fuzz_entries::kernel_memory(data));
