//! One test per validation rule: each starts from the valid demo, introduces one mistake, and
//! expects the message for it, so removing a rule fails its test.

use crate::diagnostic::Diagnostic;
use crate::input::{self, Source};

const DEMO: &str = include_str!("../../scenarios/demo.yaml");

fn problems(text: &str) -> Vec<Diagnostic> {
    let source = Source {
        name: "test.yaml".into(),
        text: text.into(),
    };
    let (spec, mut diags) = match input::parse(&source) {
        Ok(ok) => ok,
        Err(d) => return d,
    };
    match super::build(&spec) {
        Ok(built) => diags.extend(built.warnings),
        Err(more) => diags.extend(more),
    }
    diags
}

/// Replaces the first occurrence of `from` in the demo (which must be there) with `to`.
fn demo_with(from: &str, to: &str) -> String {
    assert!(DEMO.contains(from), "the demo has no {from:?}");
    DEMO.replacen(from, to, 1)
}

/// Asserts a diagnostic containing `expected` points at the first line containing `marker`.
fn assert_reports(text: &str, expected: &str, marker: &str) {
    let line = text
        .lines()
        .position(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no line contains {marker:?}")) as u64
        + 1;
    let diags = problems(text);
    let found = diags.iter().find(|d| d.message.contains(expected));
    let Some(d) = found else {
        panic!(
            "expected {expected:?}, got {:#?}",
            diags.iter().map(|d| &d.message).collect::<Vec<_>>()
        );
    };
    assert_eq!(d.at.map(|a| a.pos.line), Some(line), "{expected}: wrong line");
}

#[test]
fn the_demo_is_valid_without_warnings() {
    assert_eq!(problems(DEMO), vec![]);
}

#[test]
fn unknown_field_is_reported_with_its_likely_meaning() {
    let text = demo_with("    podCIDR: 10.0.2.0/24", "    podCIRD: 10.0.2.0/24");
    assert_reports(&text, "unknown field `podCIRD`", "podCIRD");
    let d = problems(&text)
        .into_iter()
        .find(|d| d.message.contains("podCIRD"))
        .unwrap();
    assert_eq!(d.help.as_deref(), Some("did you mean `podCIDR`?"));
    assert!(!problems(&text).iter().any(|d| d.message.contains("has no `podCIDR`")));
}

#[test]
fn malformed_cidr_and_address() {
    assert_reports(
        &demo_with("10.0.0.0/14", "10.0.0.0/33"),
        "prefix length `33`",
        "10.0.0.0/33",
    );
    assert_reports(
        &demo_with("ip: 10.100.0.2", "ip: 10.100.0.256"),
        "not a valid node IP",
        "10.100.0.256",
    );
    assert_reports(&demo_with("10.0.1.0/24", "10.0.1.7/24"), "host bits set", "10.0.1.7/24");
}

#[test]
fn all_problems_are_reported_in_one_run() {
    let text = demo_with("    podCIDR: 10.0.2.0/24", "    podCIRD: 10.0.2.0/24")
        .replacen("10.0.0.0/14", "10.0.0.0/33", 1)
        .replacen("ip: 10.0.1.2", "ip: 10.0.9.2", 1);
    let errors = problems(&text).into_iter().filter(Diagnostic::is_error).count();
    assert!(errors >= 3, "{errors} errors");
}

#[test]
fn duplicate_names() {
    assert_reports(
        &demo_with("name: node-2", "name: node-1  # dup"),
        "duplicate node name",
        "# dup",
    );
    assert_reports(
        &demo_with("name: web-2", "name: web-1  # dup"),
        "duplicate pod `default/web-1`",
        "# dup",
    );
}

#[test]
fn pod_on_a_missing_node() {
    assert_reports(
        &demo_with("node: node-2", "node: node-7"),
        "which does not exist",
        "node-7",
    );
}

#[test]
fn pod_ip_outside_its_node_pod_cidr() {
    assert_reports(
        &demo_with("ip: 10.0.1.2", "ip: 10.0.2.9"),
        "outside its node's podCIDR",
        "ip: 10.0.2.9",
    );
    assert_reports(
        &demo_with("ip: 10.0.1.2", "ip: 10.0.1.1"),
        "node bridge's address",
        "ip: 10.0.1.1",
    );
    assert_reports(
        &demo_with("ip: 10.0.1.3", "ip: 10.0.1.2  # dup"),
        "already used by pod",
        "# dup",
    );
}

#[test]
fn overlapping_pod_cidrs() {
    assert_reports(
        &demo_with("podCIDR: 10.0.2.0/24", "podCIDR: 10.0.1.0/25"),
        "overlaps node `node-1`'s podCIDR",
        "10.0.1.0/25",
    );
}

#[test]
fn overlapping_networks() {
    assert_reports(
        &demo_with("nodeNetwork: 10.100.0.0/24", "nodeNetwork: 10.0.0.0/8"),
        "podNetwork 10.0.0.0/14 overlaps nodeNetwork",
        "podNetwork:",
    );
    // The Service range may sit inside the pod network, but no podCIDR may reach into it.
    assert_reports(
        &demo_with("podCIDR: 10.0.2.0/24", "podCIDR: 10.3.240.0/24"),
        "overlaps serviceNetwork",
        "10.3.240.0/24",
    );
}

#[test]
fn cluster_ip_outside_service_network_or_reused() {
    assert_reports(
        &demo_with("clusterIP: 10.3.241.152", "clusterIP: 10.4.0.1"),
        "outside serviceNetwork",
        "10.4.0.1",
    );
    let text = demo_with(
        "traces:",
        "  - name: web2\n    clusterIP: 10.3.241.152  # dup\n    selector: {app: web}\n    ports: [{port: 80}]\ntraces:",
    );
    assert_reports(&text, "already used by service `default/web`", "# dup");
}

#[test]
fn selector_matching_no_pod_is_a_warning() {
    let diags = problems(&demo_with("selector: {app: web}", "selector: {app: wbe}"));
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert!(!diags[0].is_error());
    assert!(diags[0].message.contains("selects no pod"));
}

#[test]
fn named_target_port_must_name_a_container_port() {
    assert_reports(
        &demo_with("targetPort: 8080", "targetPort: web"),
        "targetPort `web` names no TCP container port",
        "targetPort: web",
    );
}

#[test]
fn node_port_range() {
    let text = demo_with("type: ClusterIP", "type: NodePort").replacen(
        "targetPort: 8080}",
        "targetPort: 8080, nodePort: 8080}",
        1,
    );
    assert_reports(&text, "outside the NodePort range", "nodePort: 8080");
}

#[test]
fn containers_of_one_pod_cannot_share_a_port() {
    let text = demo_with(
        "      - name: server\n        ports: [{containerPort: 8080}]     # protocol",
        "      - name: server\n        ports: [{containerPort: 8080}]\n      - name: sidecar\n        ports: [{containerPort: 8080}]     # dup",
    );
    assert_reports(&text, "port 8080/TCP is declared by container `server` too", "# dup");
}

#[test]
fn unicast_extra_route_needs_a_way_out() {
    let text = demo_with(
        "    podCIDR: 10.0.2.0/24",
        "    podCIDR: 10.0.2.0/24\n    routes: [{destination: 10.0.1.0/24}]",
    );
    assert_reports(&text, "needs `via` or `dev`", "{destination: 10.0.1.0/24}");
}

#[test]
fn names_must_be_dns_labels() {
    assert_reports(
        &demo_with("name: pod-a", "name: Pod_A"),
        "not a valid pod name",
        "Pod_A",
    );
}

#[test]
fn expected_verdict_must_be_known() {
    let text = format!("{DEMO}  - {{from: pod-a, to: svc/web, expect: deliverd}}\n");
    assert_reports(&text, "`deliverd` is not a verdict", "deliverd");
}

#[test]
fn yaml_syntax_error_names_its_place() {
    assert_reports(
        &demo_with("  name: demo", "  name: [demo"),
        "invalid YAML",
        "nodeNetwork",
    );
}

#[test]
fn an_alias_bomb_is_refused() {
    let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    let mut prev = 'a';
    for c in 'b'..='j' {
        text.push_str(&format!(
            "{c}: &{c} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
        ));
        prev = c;
    }
    let diags = problems(&text);
    assert!(diags.iter().any(|d| d.message.contains("aliases expand")), "{diags:#?}");
}
