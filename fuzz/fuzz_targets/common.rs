//! The harness and mutator the stable run in tests/fuzz.rs uses too, and the tree mutator as
//! a libFuzzer custom mutator.

// Each target uses only part of this module.
#![allow(dead_code)]

#[path = "../../tests/fuzz/harness.rs"]
pub mod harness;
#[path = "../../tests/fuzz/mutate.rs"]
pub mod mutate;

/// Scenarios whose nodes are grafted into mutants.
const DONORS: &[&str] = &[
    include_str!("../../scenarios/demo.yaml"),
    include_str!("../../scenarios/shop.yaml"),
    include_str!("../../scenarios/outside-in.yaml"),
    include_str!("../../scenarios/datapath.yaml"),
    include_str!("../../scenarios/broken.yaml"),
];

/// Mutates the YAML tree of the input most of the time, and its bytes otherwise (or when it is
/// not YAML the tree mutator can read).
pub fn mutate_input(data: &mut [u8], size: usize, max_size: usize, seed: u32) -> usize {
    use mutate::Choices;
    let mut rng = mutate::Rng(u64::from(seed));
    if !rng.chance(8)
        && let Ok(text) = std::str::from_utf8(&data[..size])
    {
        let donor = DONORS[rng.below(DONORS.len())];
        if let Some(out) = mutate::mutate_text(text, donor, &mut rng)
            && out.len() <= max_size
        {
            data[..out.len()].copy_from_slice(out.as_bytes());
            return out.len();
        }
    }
    libfuzzer_sys::fuzzer_mutate(data, size, max_size)
}
