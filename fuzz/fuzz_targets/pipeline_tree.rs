//! Loader, compiler, tracer and materialize on scenarios whose YAML trees are mutated; both
//! scripts pass `sh -n`.
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::harness::check_pipeline(data, true);
});

libfuzzer_sys::fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    common::mutate_input(data, size, max_size, seed)
});
