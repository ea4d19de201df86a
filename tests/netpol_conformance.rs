//! The upstream NetworkPolicy conformance cases (kubernetes/kubernetes
//! `test/e2e/network/netpol/network_policy.go`) as scenarios: each file holds one case's pods
//! and policies and its truth table as trace cases, and `k8snet check` must pass every one.

use std::process::Command;

#[test]
fn every_upstream_conformance_case_passes() {
    let mut files: Vec<_> = std::fs::read_dir("tests/netpol-conformance")
        .expect("tests/netpol-conformance is there")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 40, "only {} conformance cases", files.len());
    let mut failures = Vec::new();
    let mut pairs = 0;
    for file in &files {
        let out = Command::new(env!("CARGO_BIN_EXE_k8snet"))
            .arg("check")
            .arg(file)
            .env_remove("K8SNET_SCENARIO")
            .output()
            .expect("k8snet runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let summary = stdout.lines().last().unwrap_or_default().to_owned();
        let cases: usize = summary.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
        pairs += cases;
        if !out.status.success() || cases == 0 {
            failures.push(format!("{}: {summary}\n{stdout}", file.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("{} upstream conformance cases, {pairs} pod pairs checked", files.len());
}
