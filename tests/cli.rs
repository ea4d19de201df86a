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
