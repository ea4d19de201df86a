//! Golden tests: run the built binary on every scenario and bad-input file and compare stdout,
//! stderr and the exit code with the files under tests/cmd/. Bless with TRYCMD=overwrite.

use std::path::Path;

#[test]
fn golden() {
    trycmd::TestCases::new().case("tests/cmd/*.toml");
}

/// Every scenario and every bad-input file must have a golden case, so none goes unchecked.
#[test]
fn every_input_file_has_a_golden_case() {
    let cases: String = std::fs::read_dir("tests/cmd")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    for dir in ["scenarios", "tests/bad"] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let shown = Path::new(dir).join(path.file_name().unwrap());
            let shown = shown.to_str().unwrap();
            assert!(cases.contains(&format!("\"{shown}\"")), "no golden case runs {shown}");
        }
    }
}

/// The deepest nesting the reader accepts is answered even when the shell's stack limit is far
/// below the usual 8 MiB: the binary does its work on a thread of its own stack size. (Found
/// by fuzzing: an unoptimised build overflowed a 2 MiB stack on it.)
#[test]
fn deep_nesting_is_answered_on_a_small_stack() {
    let bin = env!("CARGO_BIN_EXE_k8snet");
    for (file, message) in [
        ("tests/bad/deep-but-accepted-nesting.yaml", "has no `nodeNetwork`"),
        (
            "tests/fuzz/crashes/deep-nesting-on-a-small-stack.yaml",
            "nest deeper than 64 levels",
        ),
    ] {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -s 1024 && exec '{bin}' explain {file}"))
            .env_remove("K8SNET_SCENARIO")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
        assert!(stderr.contains(message), "{file}: {stderr}");
    }
}
