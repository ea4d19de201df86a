//! `k8snet check`'s machine-readable reports are checked against their schemas: the JSON report
//! against docs/check.schema.json, the JUnit XML report against tests/junit.xsd with libxml2's
//! `xmllint`. With `K8SNET_REPORT_TESTS=1` (as `.ci/run` sets) a missing `xmllint` fails the
//! test; otherwise that test is skipped with a message.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_k8snet");

/// Scenarios whose cases between them pass, fail, drop at a rule and pin every field.
const SCENARIOS: &[&str] = &[
    "scenarios/demo.yaml",
    "scenarios/broken.yaml",
    "scenarios/outside-in.yaml",
    "scenarios/datapath.yaml",
    "tests/bad/wrong-expectation.yaml",
    "tests/bad/branch-expectations.yaml",
];

fn check(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("check")
        .args(args)
        .env_remove("K8SNET_SCENARIO")
        .output()
        .expect("the binary runs")
}

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string("docs/check.schema.json").expect("docs/check.schema.json");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema")
}

#[test]
fn every_json_report_matches_the_schema() {
    let validator = schema();
    let mut stopped = 0;
    for scenario in SCENARIOS {
        let out = check(&[scenario, "-o", "json"]);
        let value: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{scenario}: no JSON: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{scenario}:\n{}", errors.join("\n"));
        stopped += value["cases"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| !c["stopped"].is_null())
            .count();
    }
    assert!(stopped >= 5, "only {stopped} cases say where they stopped");
}

/// `-o yaml` is the JSON report, written as YAML: it reads back to the same value, so the same
/// schema holds for it.
#[test]
fn every_yaml_report_is_the_json_report() {
    let validator = schema();
    for scenario in SCENARIOS {
        let json: serde_json::Value = serde_json::from_slice(&check(&[scenario, "-o", "json"]).stdout)
            .unwrap_or_else(|e| panic!("{scenario}: no JSON: {e}"));
        let text = String::from_utf8(check(&[scenario, "-o", "yaml"]).stdout).expect("UTF-8");
        let yaml: serde_json::Value =
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{scenario}: the YAML does not parse: {e}"));
        assert_eq!(yaml, json, "{scenario}: -o yaml is not the -o json document");
        assert!(validator.is_valid(&yaml), "{scenario}");
    }
}

#[test]
fn the_schema_rejects_a_report_that_lost_a_field() {
    let validator = schema();
    let out = check(&["tests/bad/wrong-expectation.yaml", "-o", "json"]);
    let mut value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(validator.is_valid(&value));
    value["cases"][0].as_object_mut().unwrap().remove("reproduce");
    assert!(!validator.is_valid(&value));
}

fn xmllint() -> bool {
    let found = Command::new("xmllint").arg("--version").output().is_ok();
    if !found {
        assert!(
            std::env::var("K8SNET_REPORT_TESTS").as_deref() != Ok("1"),
            "xmllint is missing (Debian package libxml2-utils)"
        );
        eprintln!("skipped: xmllint is not installed (Debian package libxml2-utils)");
    }
    found
}

fn validates(xml: &Path) -> Result<(), String> {
    let out = Command::new("xmllint")
        .args(["--noout", "--schema", "tests/junit.xsd"])
        .arg(xml)
        .output()
        .expect("xmllint runs");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn every_junit_report_matches_the_schema() {
    if !xmllint() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("k8snet-junit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (i, scenario) in SCENARIOS.iter().enumerate() {
        let file = dir.join(format!("{i}.xml"));
        let out = check(&[scenario, "--junit", file.to_str().unwrap()]);
        assert!(out.status.code().is_some_and(|c| c < 2), "{scenario}: {out:?}");
        validates(&file).unwrap_or_else(|e| panic!("{scenario}: the JUnit report does not validate:\n{e}"));
        let text = std::fs::read_to_string(&file).unwrap();
        let cases = text.matches("<testcase ").count();
        let failures = text.matches("<failure ").count();
        let expected_failures = usize::from(out.status.code() == Some(1));
        assert!(cases >= 2, "{scenario}: {cases} test cases");
        assert!(
            failures >= expected_failures && (failures == 0) == (expected_failures == 0),
            "{scenario}: {failures} failures"
        );
    }
    // The schema can fail: a test case without its required classname does not validate.
    let broken = dir.join("broken.xml");
    let good = std::fs::read_to_string(dir.join("0.xml")).unwrap();
    std::fs::write(&broken, good.replacen(" classname=", " class=", 1)).unwrap();
    assert!(
        validates(&broken).is_err(),
        "the schema accepted a testcase without classname"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
