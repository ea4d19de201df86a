//! Every JSON trace the golden tests pin must validate against the documented schema, so the
//! schema in docs/ and the output cannot drift apart.

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string("docs/trace.schema.json").expect("docs/trace.schema.json");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema")
}

/// Runs the binary with the arguments of a golden case (the `args = [...]` line is JSON too).
/// The golden files themselves cannot be parsed: the golden-test runner rewrites backslashes.
fn output_of(case: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&stdout_of(case, None)).unwrap_or_else(|e| panic!("{} printed no JSON: {e}", case.display()))
}

/// The standard output of a golden case, with `-o json` swapped for `-o FORMAT` when given.
fn stdout_of(case: &std::path::Path, format: Option<&str>) -> Vec<u8> {
    let toml = std::fs::read_to_string(case).unwrap();
    let args_line = toml
        .lines()
        .find_map(|l| l.strip_prefix("args = "))
        .expect("an args line");
    let mut args: Vec<String> = serde_json::from_str(args_line).expect("args is a JSON array of strings");
    if let Some(format) = format {
        let at = args.iter().position(|a| a == "json").expect("a JSON case");
        args[at] = format.to_owned();
    }
    std::process::Command::new(env!("CARGO_BIN_EXE_k8snet"))
        .args(&args)
        .env_remove("K8SNET_SCENARIO")
        .output()
        .expect("the binary runs")
        .stdout
}

/// The golden cases that trace with `-o json`, with their file names.
fn json_trace_cases() -> Vec<(std::path::PathBuf, String)> {
    let mut cases: Vec<(std::path::PathBuf, String)> = std::fs::read_dir("tests/cmd")
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (p, name)
        })
        .filter(|(_, name)| name.starts_with("trace-") && name.ends_with("-json.toml"))
        .collect();
    cases.sort();
    cases
}

/// Every golden case of `-o json` run with `-o yaml` instead reads back to the same document,
/// and so matches the same schema.
#[test]
fn every_yaml_trace_is_the_json_trace() {
    let validator = schema();
    let mut checked = 0;
    for (path, name) in json_trace_cases() {
        let text = String::from_utf8(stdout_of(&path, Some("yaml"))).expect("UTF-8");
        let yaml: serde_json::Value =
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{name}: the YAML does not parse: {e}\n{text}"));
        assert_eq!(yaml, output_of(&path), "{name}: -o yaml is not the -o json document");
        assert!(validator.is_valid(&yaml), "{name}");
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} YAML traces were checked");
}

/// `trace --batch -o yaml` writes a YAML stream: one document per query, each the JSON Lines
/// record of that query.
#[test]
fn a_batch_as_yaml_is_its_json_lines() {
    let run = |format: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_k8snet"))
            .args(["trace", "--batch", "tests/batch/demo.txt", "-o", format])
            .env_remove("K8SNET_SCENARIO")
            .output()
            .expect("the binary runs");
        String::from_utf8(out.stdout).expect("UTF-8")
    };
    let records: Vec<serde_json::Value> = run("json")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&run("yaml")).expect("a YAML stream");
    assert_eq!(documents.len(), 5);
    assert_eq!(documents, records);
}

#[test]
fn every_json_trace_matches_the_schema() {
    let validator = schema();
    let mut checked = 0;
    for (path, name) in json_trace_cases() {
        let value = output_of(&path);
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{name} does not match the schema:\n{}",
            errors.join("\n")
        );
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} JSON traces were checked");
}

#[test]
fn the_schema_rejects_an_unknown_verdict() {
    let validator = schema();
    let mut value = output_of(std::path::Path::new("tests/cmd/trace-demo-builtin-json.toml"));
    assert!(validator.is_valid(&value));
    value["traces"][0]["verdict"] = "teleported".into();
    assert!(!validator.is_valid(&value));
}

/// `--all-endpoints` and several `--to` give the same top-level shape as one trace.
#[test]
fn one_shape_for_one_trace_and_many() {
    for case in [
        "tests/cmd/trace-demo-builtin-json.toml",
        "tests/cmd/trace-svc-all-endpoints-json.toml",
        "tests/cmd/trace-many-to-json.toml",
    ] {
        let value = output_of(std::path::Path::new(case));
        assert_eq!(value["schema_version"], 1, "{case}");
        assert!(value["traces"].is_array(), "{case}");
        assert!(value["scenario"]["sha256"].is_string(), "{case}");
    }
    let many = output_of(std::path::Path::new("tests/cmd/trace-svc-all-endpoints-json.toml"));
    assert_eq!(many["traces"].as_array().map(Vec::len), Some(2));
}

/// `trace --batch -o json` writes JSON Lines: each record is the document `-o json` writes for
/// one query, with the query's line.
#[test]
fn every_json_lines_record_of_a_batch_matches_the_schema() {
    let validator = schema();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_k8snet"))
        .args(["trace", "--batch", "tests/batch/demo.txt", "-o", "json"])
        .env_remove("K8SNET_SCENARIO")
        .output()
        .expect("the binary runs");
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let mut lines = vec![];
    for record in text.lines() {
        let value: serde_json::Value = serde_json::from_str(record).expect("each line is one JSON value");
        let errors: Vec<String> = validator.iter_errors(&value).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{record}: {}", errors.join("; "));
        lines.push((
            value["line"].as_u64().expect("a line number"),
            value["traces"].as_array().map_or(0, Vec::len),
        ));
    }
    assert_eq!(
        lines,
        [(2, 1), (3, 1), (5, 1), (6, 2), (7, 1)],
        "one record per query, each with its line and its traces (two branches on line 6)"
    );
}
