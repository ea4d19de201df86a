//! `k8snet explain -o json` is checked against docs/explain.schema.json for every scenario and
//! for each filter, and `-o yaml` must read back to the same document.

use std::process::Command;

fn explain(args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_k8snet"))
        .arg("explain")
        .args(args)
        .env_remove("K8SNET_SCENARIO")
        .output()
        .expect("the binary runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "explain {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string("docs/explain.schema.json").expect("docs/explain.schema.json");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema")
}

/// Every scenario whole, and the filters: one node, one Service.
fn cases() -> Vec<Vec<String>> {
    let mut cases = vec![];
    for entry in std::fs::read_dir("scenarios").unwrap() {
        let path = entry.unwrap().path().to_string_lossy().into_owned();
        cases.push(vec![path]);
    }
    cases.sort();
    cases.push(vec!["scenarios/shop.yaml".into(), "--node".into(), "node-3".into()]);
    cases.push(vec![
        "scenarios/shop.yaml".into(),
        "--service".into(),
        "shop/front".into(),
    ]);
    // Manifests: the document also says what was assumed and skipped.
    cases.push(vec!["tests/manifests/cluster.json".into()]);
    cases.push(vec!["tests/manifests/dir".into()]);
    cases
}

#[test]
fn every_json_explanation_matches_the_schema_and_its_yaml() {
    let validator = schema();
    let mut services = 0;
    for case in cases() {
        let args: Vec<&str> = case.iter().map(String::as_str).collect();
        let json: serde_json::Value =
            serde_json::from_slice(&explain(&[&args[..], &["-o", "json"]].concat())).expect("JSON");
        let errors: Vec<String> = validator
            .iter_errors(&json)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{case:?}:\n{}", errors.join("\n"));
        let yaml = String::from_utf8(explain(&[&args[..], &["-o", "yaml"]].concat())).expect("UTF-8");
        let yaml: serde_json::Value = serde_saphyr::from_str(&yaml).expect("the YAML parses");
        assert_eq!(yaml, json, "{case:?}: -o yaml is not the -o json document");
        services += json["services"].as_array().map_or(0, Vec::len);
    }
    assert!(services >= 10, "only {services} Services were checked");
}

#[test]
fn the_filters_choose_what_the_document_holds() {
    let node: serde_json::Value =
        serde_json::from_slice(&explain(&["scenarios/shop.yaml", "--node", "node-3", "-o", "json"])).unwrap();
    let names: Vec<&str> = node["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["node-3"]);
    assert_eq!(node["services"], serde_json::json!([]));
    let service: serde_json::Value = serde_json::from_slice(&explain(&[
        "scenarios/shop.yaml",
        "--service",
        "shop/front",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(service["nodes"], serde_json::json!([]));
    assert_eq!(service["services"][0]["name"], "shop/front");
    assert!(service["cloud_router"].is_null());
}

/// A generated cluster above the summary's size is summarised as text, and given whole as JSON.
#[test]
fn json_never_summarises() {
    let generated = Command::new(env!("CARGO_BIN_EXE_k8snet"))
        .args(["generate", "--nodes", "21", "--pods-per-node", "2"])
        .output()
        .expect("generate runs");
    let path = std::env::temp_dir().join(format!("k8snet-explain-{}.yaml", std::process::id()));
    std::fs::write(&path, &generated.stdout).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&explain(&[path.to_str().unwrap(), "-o", "json"])).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(json["nodes"].as_array().map(Vec::len), Some(21));
    assert!(
        json["services"][0]["ports"][0]["rules"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    );
    assert!(schema().is_valid(&json));
}

#[test]
fn the_schema_rejects_a_document_that_lost_a_field() {
    let validator = schema();
    let mut json: serde_json::Value = serde_json::from_slice(&explain(&["-o", "json"])).unwrap();
    assert!(validator.is_valid(&json));
    json["services"][0]["ports"][0]["endpoints"][0]
        .as_object_mut()
        .unwrap()
        .remove("node");
    assert!(!validator.is_valid(&json));
}

fn json_of(args: &[&str]) -> serde_json::Value {
    serde_json::from_slice(&explain(&[args, &["-o", "json"]].concat())).expect("JSON")
}

/// What the text shows of endpoints kube-proxy leaves out, the document holds too.
#[test]
fn skipped_endpoints_are_in_the_document_with_their_reason() {
    let json = json_of(&["tests/manifests/cluster.yaml", "--service", "shop/web"]);
    let skipped = &json["services"][0]["ports"][0]["skipped_endpoints"];
    let reasons: Vec<&str> = skipped
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["not_ready", "terminating_while_others_ready"], "{skipped:#}");
    assert_eq!(skipped[0]["ip"], "10.244.2.9");
}

/// In nftables mode every node carries its `ip kube-proxy` table, and each rule's `text` is the
/// line the text view lists; in iptables mode there is none.
#[test]
fn nodes_carry_their_nftables_table_in_nftables_mode_only() {
    let json = json_of(&["scenarios/kube-proxy-nftables.yaml"]);
    let text = String::from_utf8(explain(&["scenarios/kube-proxy-nftables.yaml"])).unwrap();
    let table = &json["nodes"][0]["nftables"];
    assert_eq!(table["name"], "kube-proxy");
    let chains = table["chains"].as_array().unwrap();
    let services = chains
        .iter()
        .find(|c| c["name"] == "services")
        .expect("a services chain");
    let vmap = services["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["statement"]["vmap"]["map"] == "service-ips")
        .expect("the service-ips lookup");
    assert!(text.contains(vmap["text"].as_str().unwrap()));
    let service_ips = table["sets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "service-ips")
        .unwrap();
    assert!(service_ips["map"].as_bool().unwrap());
    assert!(!service_ips["elements"].as_array().unwrap().is_empty());
    let port = &json["services"][0]["ports"][0];
    assert!(!port["nftables"].as_array().unwrap().is_empty(), "{port:#}");
    let iptables = json_of(&["scenarios/kube-proxy-iptables.yaml"]);
    assert!(iptables["nodes"][0]["nftables"].is_null());
}

/// Each pod says which policies select it, and whether it is isolated, as the text's table does.
#[test]
fn pods_name_the_policies_that_select_them() {
    for (scenario, isolated) in [("scenarios/netpol.yaml", true), ("scenarios/netpol-none.yaml", false)] {
        let json = json_of(&[scenario]);
        let pods: Vec<&serde_json::Value> = json["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|n| n["pods"].as_array().unwrap())
            .collect();
        let selected = pods
            .iter()
            .find(|p| {
                !p["network_policies"]["ingress"]["policies"]
                    .as_array()
                    .unwrap()
                    .is_empty()
            })
            .expect("a selected pod");
        assert_eq!(
            selected["network_policies"]["ingress"]["isolated"], isolated,
            "{scenario}"
        );
        let policies = &json["network_policies"];
        assert_eq!(policies["modelled"], isolated, "{scenario}");
        let names: Vec<&str> = policies["policies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for name in selected["network_policies"]["ingress"]["policies"].as_array().unwrap() {
            assert!(names.contains(&name.as_str().unwrap()), "{scenario}: {name}");
        }
    }
}
