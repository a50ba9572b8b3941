#![no_main]
//! Fuzz target `qemu_log`: see `coroner_fuzz_entries::qemu_log`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| coroner_fuzz_entries::qemu_log(data));
