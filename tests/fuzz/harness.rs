//! What every fuzzed input must satisfy, shared by the libFuzzer targets under `fuzz/` and the
//! stable time-bounded run in `tests/fuzz.rs`:
//!
//! - nothing panics, whatever the bytes;
//! - input that is refused comes back with at least one error, every diagnostic has a message and
//!   a place inside the file (or none), and the rendered report says `error`;
//! - for input that is accepted, the compiler, the tracer (between pods, nodes, Services and
//!   names picked from the loaded cluster, and the scenario's own `traces:`), the renderers and
//!   `materialize` all finish, every refusal is worded, and both scripts pass `sh -n`.

#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Stdio};

use k8snet::compile;
use k8snet::diagnostic::{Diagnostic, Severity};
use k8snet::input::{self, Source};
use k8snet::model::{self, Cluster, ServiceType};
use k8snet::net::NetState;
use k8snet::render::{self, style::Style};
use k8snet::resolve::Query;
use k8snet::sim::netfilter::BranchChoice;
use k8snet::tracer;

use super::mutate::{Choices, Rng};

/// The name the scenario is shown under; the file name is not part of what is fuzzed.
const SOURCE_NAME: &str = "fuzz.yaml";
/// Bounds per input, so one large cluster cannot stall a run.
const MAX_QUERIES: usize = 8;
const MAX_SCENARIO_TRACES: usize = 8;
const MAX_BRANCHES: usize = 4;

/// What one input led to, for the stable run's summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct Reached {
    pub accepted: bool,
    pub traces: usize,
    pub scripts: usize,
}

fn text_of(bytes: &[u8]) -> String {
    // The binary refuses invalid UTF-8 before parsing; replacing it lets every other byte
    // sequence still reach the parser.
    String::from_utf8_lossy(bytes).into_owned()
}

fn check_diagnostics(source: &Source, diags: &[Diagnostic], refused: bool) {
    if refused {
        assert!(
            diags.iter().any(|d| d.severity == Severity::Error),
            "input was refused without an error: {diags:?}"
        );
    }
    let lines = yaml_lines(&source.text);
    for d in diags {
        assert!(!d.message.trim().is_empty(), "a diagnostic without a message: {d:?}");
        if let Some(span) = d.at {
            assert!(
                span.pos.line <= lines + 1,
                "diagnostic points at line {} of a {lines}-line file: {d:?}",
                span.pos.line
            );
        }
    }
    if !diags.is_empty() {
        let mut sorted = diags.to_vec();
        k8snet::diagnostic::sort(&mut sorted);
        let shown = render::diagnostics::render(source, &sorted, false);
        if refused {
            assert!(
                shown.contains("error"),
                "refused, but the report says no error:\n{shown}"
            );
        }
        // Colour must not change what is reported, only how.
        let _ = render::diagnostics::render(source, &sorted, true);
    }
}

/// input::parse + model::build, as `k8snet` loads a file. Returns the cluster when accepted.
pub fn load(bytes: &[u8]) -> Option<Cluster> {
    let source = Source {
        name: SOURCE_NAME.to_owned(),
        text: text_of(bytes),
    };
    let (spec, problems) = match input::parse(&source) {
        Ok(parsed) => parsed,
        Err(diags) => {
            check_diagnostics(&source, &diags, true);
            return None;
        }
    };
    match model::build(&spec) {
        Ok(built) if problems.is_empty() => {
            assert!(
                built.warnings.iter().all(|w| w.severity == Severity::Warning),
                "an accepted scenario carries an error: {:?}",
                built.warnings
            );
            check_diagnostics(&source, &built.warnings, false);
            Some(built.cluster)
        }
        Ok(built) => {
            let mut all = problems;
            all.extend(built.warnings);
            check_diagnostics(&source, &all, true);
            None
        }
        Err(more) => {
            let mut all = problems;
            all.extend(more);
            check_diagnostics(&source, &all, true);
            None
        }
    }
}

/// The loader target: any bytes.
pub fn check_loader(bytes: &[u8]) -> Reached {
    Reached {
        accepted: load(bytes).is_some(),
        ..Reached::default()
    }
}

/// The whole pipeline target: load, compile, explain, trace, materialize.
pub fn check_pipeline(bytes: &[u8], shell: bool) -> Reached {
    let Some(cluster) = load(bytes) else {
        return Reached::default();
    };
    let state = compile::compile(&cluster);
    let filter = render::explain::Filter::default();
    let shown = render::explain::shown(&cluster, &filter);
    let facts = compile::facts::gather(&cluster, &state, &shown.services, shown.whole);
    let _ = render::explain::render(&cluster, &state, &facts, &filter, Style::PLAIN);
    // Which pairs are traced follows from the input alone, so a replay traces the same ones.
    let mut rng = Rng(fnv1a(bytes));
    let mut reached = Reached {
        accepted: true,
        ..Reached::default()
    };
    let (froms, tos) = candidates(&cluster);
    for _ in 0..MAX_QUERIES {
        let (from, namespace) = &froms[rng.below(froms.len())];
        let (to, port) = &tos[rng.below(tos.len())];
        let query = Query {
            port: *port,
            namespace,
            ..Query::new(from, to)
        };
        reached.traces += trace_all_branches(&cluster, &state, &query);
    }
    for case in cluster.traces.iter().take(MAX_SCENARIO_TRACES) {
        let query = Query {
            port: case.port,
            protocol: case.protocol,
            ..Query::new(&case.from.value, &case.to.value)
        };
        reached.traces += trace_all_branches(&cluster, &state, &query);
    }
    reached.scripts = materialize(&state, shell);
    reached
}

fn trace_all_branches(c: &Cluster, state: &NetState, q: &Query<'_>) -> usize {
    let first = match tracer::trace(c, state, q, BranchChoice::default()) {
        Ok(t) => t,
        Err(e) => {
            assert!(
                !e.trim().is_empty(),
                "a trace refused without a reason: {} -> {}",
                q.from,
                q.to
            );
            return 0;
        }
    };
    let mut traces = vec![];
    if let Some((decision, branches)) = tracer::endpoint_decision(&first) {
        for n in 0..branches.min(MAX_BRANCHES) {
            let choice = BranchChoice {
                nth: Some((decision, n)),
                ..BranchChoice::default()
            };
            match tracer::trace(c, state, q, choice) {
                Ok(t) => traces.push(t),
                Err(e) => panic!(
                    "branch {n} of {} -> {} refused after the first trace was not: {e}",
                    q.from, q.to
                ),
            }
        }
    }
    traces.push(first);
    for detail in [render::trace::Detail::Brief, render::trace::Detail::Full] {
        let _ = render::trace::texts(&traces, Style::PLAIN, detail);
    }
    for t in &traces {
        let _ = render::trace::mermaid(t);
        let _ = render::trace::dot(t);
    }
    let scenario = render::ScenarioRef {
        name: "fuzz.yaml".into(),
        sha256: String::new(),
        manifests: None,
    };
    let json = render::trace::json(&scenario, &traces.iter().collect::<Vec<_>>());
    assert!(
        serde_json::from_str::<serde_json::Value>(&json).is_ok(),
        "trace JSON does not parse:\n{json}"
    );
    traces.len()
}

/// `--from`, and the `--namespace` it is read in.
type Sender = (String, String);
/// `--to`, and the `--port` given with it.
type Destination = (String, Option<u16>);

/// Sources and destinations the tracer is asked about: every kind of name `--from` and `--to`
/// take, built from what the cluster holds, and a few that name nothing.
fn candidates(c: &Cluster) -> (Vec<Sender>, Vec<Destination>) {
    let mut froms: Vec<Sender> = vec![
        ("internet".into(), "default".into()),
        ("external:198.51.100.9".into(), "default".into()),
        ("no-such-pod".into(), "default".into()),
    ];
    let mut tos: Vec<Destination> = vec![
        ("no-such-name".into(), None),
        ("8.8.8.8:53".into(), None),
        ("127.0.0.1:1".into(), None),
    ];
    for p in &c.pods {
        froms.push((p.name.clone(), p.namespace.clone()));
        froms.push((format!("{}/{}", p.namespace, p.name), "default".into()));
        froms.push((p.ip.to_string(), "default".into()));
        for ct in &p.containers {
            froms.push((format!("{}/{}", p.name, ct.name), p.namespace.clone()));
        }
        let port = p.listeners().next().map(|(_, cp)| cp.port);
        tos.push((format!("pod/{}", p.name), port.or(Some(80))));
        if let Some(port) = port {
            tos.push((format!("{}:{port}", p.ip), None));
        }
    }
    for n in &c.nodes {
        froms.push((format!("node/{}", n.name), "default".into()));
        tos.push((format!("node/{}:22", n.name), None));
    }
    for s in &c.services {
        for sp in &s.ports {
            let port = Some(sp.port);
            tos.push((format!("{}/svc/{}", s.namespace, s.name), port));
            tos.push((format!("{}.{}", s.name, s.namespace), port));
            tos.push((format!("{}.{}.svc.{}", s.name, s.namespace, c.cluster_domain), port));
            if let Some(ip) = s.cluster_ip {
                tos.push((format!("{ip}:{}", sp.port), None));
            }
            if s.kind == ServiceType::LoadBalancer {
                tos.push((format!("{}/lb/{}", s.namespace, s.name), port));
            }
            if let (Some(np), Some(n)) = (sp.node_port, c.nodes.first()) {
                tos.push((format!("node/{}:{np}", n.name), None));
            }
        }
    }
    for i in &c.ingresses {
        tos.push((format!("{}/ingress/{}", i.namespace, i.name), None));
        for r in &i.rules {
            let host = r.host.as_deref().unwrap_or("example.com").replacen('*', "www", 1);
            for p in &r.paths {
                tos.push((format!("http://{host}{}", p.path), None));
            }
        }
    }
    (froms, tos)
}

fn materialize(state: &NetState, shell: bool) -> usize {
    let prefix = "fz-";
    let mut scripts = 0;
    for (what, script) in [
        ("build", render::materialize::build(state, prefix, SOURCE_NAME)),
        ("teardown", render::materialize::teardown(state, prefix, SOURCE_NAME)),
    ] {
        match script {
            Ok(script) => {
                if shell && let Some(errors) = sh_syntax_errors(&script) {
                    panic!("the {what} script fails `sh -n`: {errors}\n{script}");
                }
                scripts += 1;
            }
            Err(e) => assert!(!e.trim().is_empty(), "materialize {what} refused without a reason"),
        }
    }
    scripts
}

/// `sh -n`: what the shell says is wrong with the script's syntax, if anything.
pub fn sh_syntax_errors(script: &str) -> Option<String> {
    let mut child = Command::new("sh")
        .arg("-n")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh runs");
    // Written from a thread so a large script cannot deadlock against sh's stderr.
    let mut stdin = child.stdin.take().expect("piped stdin");
    let text = script.to_owned();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(text.as_bytes());
    });
    let out = child.wait_with_output().expect("sh -n finishes");
    let _ = writer.join();
    (!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Lines as YAML counts them: a carriage return alone also ends one.
fn yaml_lines(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let breaks = bytes
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')))
        .count();
    breaks as u64 + 1
}

pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
