//! The loader (input::parse + model::build) on any bytes, mutated byte by byte.
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::harness::check_loader(data);
});
