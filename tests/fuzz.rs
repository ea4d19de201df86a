//! The stable-toolchain fuzz run: the kept corpus and every recorded crash replayed, then
//! mutants of the shipped scenarios for `K8SNET_FUZZ_SECONDS` seconds (default 3), each put
//! through the loader, compiler, tracer and `materialize` with the checks in
//! `tests/fuzz/harness.rs`. `K8SNET_FUZZ_SEED` repeats a run; a failing input is written under
//! the target directory, to be kept in `tests/fuzz/crashes/` once understood.

#[path = "fuzz/harness.rs"]
mod harness;
#[path = "fuzz/mutate.rs"]
mod mutate;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mutate::{Choices, Rng};

const DEFAULT_SECONDS: u64 = 3;

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.expect("readable directory").path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn seeds() -> Vec<Vec<u8>> {
    ["scenarios", "tests/bad", "tests/fuzz/corpus"]
        .iter()
        .flat_map(|d| files_under(Path::new(d)))
        .map(|p| std::fs::read(p).expect("readable seed"))
        .collect()
}

/// The pipeline checks on `input`, on a thread with the stack the binary gives its work: a test
/// thread's 2 MiB is less than the deepest nesting the reader accepts needs in a debug build.
fn checked(input: &[u8]) -> std::thread::Result<harness::Reached> {
    let owned = input.to_vec();
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || harness::check_pipeline(&owned, true))
        .expect("a fuzz thread starts")
        .join()
}

/// Runs the pipeline checks on `input`; on a panic, keeps the input and fails with its path.
fn run_one(input: &[u8], seed: u64) -> harness::Reached {
    match checked(input) {
        Ok(reached) => reached,
        Err(_) => {
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
            std::fs::create_dir_all(&dir).expect("failure directory");
            let path = dir.join(format!("{:016x}.yaml", harness::fnv1a(input)));
            std::fs::write(&path, input).expect("failure written");
            panic!(
                "fuzzed input failed (seed {seed}); it is kept in {}: replay it by copying it to tests/fuzz/crashes/",
                path.display()
            );
        }
    }
}

#[test]
fn kept_corpus_and_crashes_replay() {
    let mut files = files_under(Path::new("tests/fuzz/corpus"));
    let crashes = files_under(Path::new("tests/fuzz/crashes"));
    files.extend(crashes.iter().cloned());
    assert!(!files.is_empty(), "the kept corpus is missing");
    for path in &files {
        let bytes = std::fs::read(path).expect("readable corpus file");
        if checked(&bytes).is_err() {
            panic!("{} fails again", path.display());
        }
    }
}

/// The checks must be able to see something: the shipped scenarios are accepted, traced and
/// materialized, and a broken file is refused with an error.
#[test]
fn the_harness_reaches_every_stage() {
    let demo = std::fs::read("scenarios/demo.yaml").unwrap();
    let reached = harness::check_pipeline(&demo, true);
    assert!(
        reached.accepted && reached.traces > 0 && reached.scripts == 2,
        "{reached:?}"
    );
    let bad = std::fs::read("tests/bad/three-mistakes.yaml").unwrap();
    assert!(!harness::check_loader(&bad).accepted);
    assert!(
        harness::sh_syntax_errors("if then\n").is_some(),
        "sh -n lets a broken script through"
    );
}

/// The tree mutator writes back what it read: a shipped scenario, read and written with no
/// mutation, is still accepted, so mutants differ from their seed only where mutated.
#[test]
fn the_tree_writer_keeps_a_scenario_intact() {
    for path in files_under(Path::new("scenarios")) {
        let text = std::fs::read_to_string(&path).unwrap();
        let tree = mutate::parse(&text).expect("a scenario is YAML");
        let written = mutate::emit(&tree);
        assert_eq!(
            mutate::parse(&written),
            Some(tree),
            "{} changes when written back",
            path.display()
        );
        assert!(
            harness::check_loader(written.as_bytes()).accepted,
            "{} is refused once written back:\n{written}",
            path.display()
        );
    }
}

#[test]
fn mutants_of_the_scenarios_for_a_bounded_time() {
    let seconds = std::env::var("K8SNET_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SECONDS);
    let seed = std::env::var("K8SNET_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs())
        });
    let seeds = seeds();
    let scenarios: Vec<String> = files_under(Path::new("scenarios"))
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    // Said before the run, so that a run that dies outright (not by a panic) can be repeated.
    eprintln!("fuzz: seed {seed} (K8SNET_FUZZ_SEED={seed} repeats this run)");
    let mut rng = Rng(seed);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let (mut runs, mut accepted, mut traces, mut scripts) = (0u64, 0u64, 0usize, 0usize);
    while Instant::now() < deadline {
        // Half the runs start from a shipped scenario, which mutants most often leave valid.
        let mut input = if rng.chance(2) {
            scenarios[rng.below(scenarios.len())].clone().into_bytes()
        } else {
            seeds[rng.below(seeds.len())].clone()
        };
        for _ in 0..if rng.chance(4) { 2 } else { 1 } {
            let tree = !rng.chance(4);
            let mutant = if tree {
                let text = String::from_utf8_lossy(&input).into_owned();
                let donor = &scenarios[rng.below(scenarios.len())];
                mutate::mutate_text(&text, donor, &mut rng).map(String::into_bytes)
            } else {
                None
            };
            match mutant {
                Some(m) => input = m,
                None => mutate::mutate_bytes(&mut input, &mut rng),
            }
        }
        let reached = run_one(&input, seed);
        runs += 1;
        accepted += u64::from(reached.accepted);
        traces += reached.traces;
        scripts += reached.scripts;
    }
    println!(
        "fuzz: {runs} inputs in {seconds} s (seed {seed}): {accepted} accepted, {traces} traces, {scripts} scripts through sh -n"
    );
    assert!(runs > 0, "no input was tried");
    assert!(
        accepted > 0 || runs < 50,
        "no mutant got past the loader in {runs} tries"
    );
}
