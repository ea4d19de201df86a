//! The trace diagrams are checked by the programs that read them: every DOT graph is rendered
//! by Graphviz (`dot -Tsvg`), and every Mermaid diagram is parsed by Mermaid's own parser
//! (`tests/diagrams/check.mjs`, after `npm ci` in `tests/diagrams`). With
//! `K8SNET_DIAGRAM_TESTS=1` (as `.ci/run` sets) a missing tool fails the test; otherwise it is
//! skipped with a message.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_k8snet");

/// Traces that between them pass every kind of place and decision: NAT both ways, a load
/// balancer, an ingress controller, drops, and a DNS failure with no hops.
const CASES: &[&[&str]] = &[
    &["--from", "pod-a", "--to", "svc/web"],
    &["--from", "web-2", "--to", "svc/web"],
    &[
        "-f",
        "scenarios/outside-in.yaml",
        "--from",
        "internet",
        "--to",
        "http://shop.example.com/cart",
    ],
    &[
        "-f",
        "scenarios/outside-in.yaml",
        "--from",
        "internet",
        "--to",
        "node/node-3:30081",
    ],
    &["-f", "scenarios/outside-in.yaml", "--from", "client", "--to", "nosuch"],
    &[
        "-f",
        "scenarios/datapath.yaml",
        "--from",
        "client-3",
        "--to",
        "pod/echo-1",
    ],
    &[
        "-f",
        "scenarios/datapath.yaml",
        "--from",
        "client-2",
        "--to",
        "svc/echo2",
    ],
];

fn required() -> bool {
    std::env::var("K8SNET_DIAGRAM_TESTS").is_ok_and(|v| v == "1")
}

fn diagrams(format: &str, dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    CASES
        .iter()
        .enumerate()
        .map(|(i, args)| {
            let out = Command::new(BIN)
                .arg("trace")
                .args(*args)
                .args(["-o", format])
                .env_remove("K8SNET_SCENARIO")
                .output()
                .unwrap();
            assert!(
                matches!(out.status.code(), Some(0 | 1)),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let path = dir.join(format!("case-{i}.{format}"));
            std::fs::write(&path, &out.stdout).unwrap();
            path
        })
        .collect()
}

fn available(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn graphviz_renders_every_dot_graph() {
    if !available("dot", "-V") {
        assert!(!required(), "K8SNET_DIAGRAM_TESTS=1 but Graphviz's dot is not on PATH");
        eprintln!("diagram test skipped: Graphviz's dot is not on PATH (apt-get install graphviz)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("k8snet-dot-{}", std::process::id()));
    for path in diagrams("dot", &dir) {
        let out = Command::new("dot").arg("-Tsvg").arg(&path).output().unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("<svg"));
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn mermaid_parses_every_sequence_diagram() {
    let checker = Path::new("tests/diagrams");
    if !available("node", "--version") || !checker.join("node_modules/mermaid").exists() {
        assert!(
            !required(),
            "K8SNET_DIAGRAM_TESTS=1 but node or Mermaid is missing: run `npm ci` in tests/diagrams"
        );
        eprintln!("diagram test skipped: needs node and `npm ci` in tests/diagrams");
        return;
    }
    let dir = std::env::temp_dir().join(format!("k8snet-mermaid-{}", std::process::id()));
    let files = diagrams("mermaid", &dir);
    let out = Command::new("node")
        .arg(checker.join("check.mjs"))
        .args(&files)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(report.matches(": sequence").count(), files.len(), "{report}");
    let _ = std::fs::remove_dir_all(dir);
}
