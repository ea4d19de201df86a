//! The loader on scenarios whose YAML trees are mutated (nodes replaced, duplicated, deleted,
//! grafted, swapped for hostile values).
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::harness::check_loader(data);
});

libfuzzer_sys::fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    common::mutate_input(data, size, max_size, seed)
});
