//! Loader, compiler, tracer and materialize on any bytes, mutated byte by byte; both scripts
//! pass `sh -n`.
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::harness::check_pipeline(data, true);
});
