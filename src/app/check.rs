//! `k8snet check`: run the scenario's `traces:` and compare each verdict with its `expect`.
//!
//! A case whose names resolve to nothing is a mistake in the file, not a change in the
//! network: it is reported at its field, with a did-you-mean, and nothing is traced.

use std::path::Path;

use super::{EXIT_BAD_INPUT, EXIT_DROPPED, EXIT_OK, Outcome, load, usage};
use crate::diagnostic::{self, Diagnostic};
use crate::model::{CaseText, Cluster, TraceCase};
use crate::net::NetState;
use crate::render::{self, check::CaseReport, style::Style};
use crate::resolve::{Field, Problem, Query};
use crate::sim::netfilter::BranchChoice;
use crate::trace::Trace;

pub struct Options<'a> {
    pub paths: &'a [std::path::PathBuf],
    pub max_input: u64,
    pub output: crate::cli::ReportFormat,
    pub junit: Option<&'a Path>,
}

pub fn run(o: &Options<'_>, style: Style, err_color: bool) -> Outcome {
    let loaded = match load(o.paths, o.max_input, err_color) {
        Ok(l) => l,
        Err(o) => return o,
    };
    let c = &loaded.cluster;
    if c.traces.is_empty() {
        return usage(format!("{} has no `traces:` to check", loaded.source.name));
    }
    let state = crate::compile::compile(c);
    let mut problems = Vec::new();
    let mut cases = Vec::new();
    for case in &c.traces {
        match trace_case(c, &state, case) {
            Ok((traces, addresses)) => cases.push(report(case, &traces, &addresses, &loaded.source.name)),
            Err(p) => problems.push(diagnostic_for(case, &p, diagnostic::Severity::Error)),
        }
    }
    if !problems.is_empty() {
        let mut all = loaded.warnings.clone();
        all.extend(problems);
        diagnostic::sort(&mut all);
        return Outcome {
            stderr: loaded.render(&all, err_color),
            code: EXIT_BAD_INPUT,
            ..Outcome::default()
        };
    }
    let report = render::check::Report::new(loaded.scenario_ref(), cases);
    if let Some(file) = o.junit
        && let Err(e) = std::fs::write(file, render::check::junit(&report))
    {
        return usage(format!("cannot write the JUnit report {}: {e}", file.display()));
    }
    Outcome {
        stdout: match o.output {
            crate::cli::ReportFormat::Json => render::check::json(&report),
            crate::cli::ReportFormat::Yaml => render::check::yaml(&report),
            crate::cli::ReportFormat::Text => loaded.framed(render::check::text(&report, style)),
        },
        stderr: if loaded.warnings.is_empty() {
            String::new()
        } else {
            loaded.render(&loaded.warnings, err_color)
        },
        code: if report.failed == 0 { EXIT_OK } else { EXIT_DROPPED },
    }
}

/// Warnings for the cases that cannot be traced, for `explain`.
pub fn case_warnings(c: &Cluster, state: &NetState) -> Vec<Diagnostic> {
    c.traces
        .iter()
        .filter_map(|case| resolve_case(c, state, case).err().map(|p| (case, p)))
        .map(|(case, p)| diagnostic_for(case, &p, diagnostic::Severity::Warning))
        .collect()
}

fn query(case: &TraceCase) -> Query<'_> {
    Query {
        from: &case.from.value,
        container: case.container.as_ref().map(|t| t.value.as_str()),
        to: &case.to.value,
        port: case.port,
        port_name: None,
        protocol: case.protocol,
        namespace: case.namespace.as_ref().map_or("default", |t| t.value.as_str()),
        endpoint: None,
        via_node: case.via_node.as_ref().map(|t| t.value.as_str()),
    }
}

/// A name of a case that resolves to nothing; `branch` when it is a key of a per-branch
/// `expect`.
struct CaseProblem {
    problem: Problem,
    branch: Option<usize>,
}

impl From<Problem> for CaseProblem {
    fn from(problem: Problem) -> CaseProblem {
        CaseProblem { problem, branch: None }
    }
}

/// The case's names, checked without tracing; the addresses of the endpoints its per-branch
/// `expect` names.
fn resolve_case(c: &Cluster, state: &NetState, case: &TraceCase) -> Result<Vec<std::net::Ipv4Addr>, CaseProblem> {
    let mut q = query(case);
    if let Some(e) = &case.endpoint {
        q.endpoint = Some(crate::resolve::endpoint_address(c, state, &q, &e.value)?);
    }
    crate::resolve::resolve_fields(c, state, &q)?;
    branch_addresses(c, state, case)
}

/// The address of each endpoint a per-branch `expect` names, in its order.
fn branch_addresses(c: &Cluster, state: &NetState, case: &TraceCase) -> Result<Vec<std::net::Ipv4Addr>, CaseProblem> {
    let q = query(case);
    case.branches
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            crate::resolve::endpoint_address(c, state, &q, &name.value).map_err(|p| CaseProblem {
                problem: p,
                branch: Some(i),
            })
        })
        .collect()
}

/// The case's trace, or with `allEndpoints` one per endpoint branch; and the addresses of the
/// endpoints a per-branch `expect` names.
fn trace_case(
    c: &Cluster,
    state: &NetState,
    case: &TraceCase,
) -> Result<(Vec<Trace>, Vec<std::net::Ipv4Addr>), CaseProblem> {
    let addresses = resolve_case(c, state, case)?;
    let first = trace_one(c, state, case)?;
    if !case.all_endpoints {
        return Ok((vec![first], addresses));
    }
    let traces = super::every_branch(c, state, &query(case), &BranchChoice::default(), first)
        .map_err(|m| Problem::new(Field::To, m))?;
    Ok((traces, addresses))
}

fn trace_one(c: &Cluster, state: &NetState, case: &TraceCase) -> Result<Trace, Problem> {
    let mut q = query(case);
    let mut choice = BranchChoice::default();
    if let Some(e) = &case.endpoint {
        let ip = crate::resolve::endpoint_address(c, state, &q, &e.value)?;
        q.endpoint = Some(ip);
        choice = BranchChoice::pinned(vec![ip]);
    }
    // The names resolved, so what is left to go wrong is an endpoint the trace never meets.
    crate::tracer::trace(c, state, &q, choice).map_err(|m| {
        let m = m.strip_prefix("--endpoint ").map(str::to_owned).unwrap_or(m);
        Problem::new(Field::Endpoint, m)
    })
}

/// Where in the case a field's mistake is, and the field's key.
fn case_field(case: &TraceCase, field: &Field) -> (crate::diagnostic::Span, &'static str) {
    match field {
        Field::From => (case.from.at, "from"),
        Field::To => (case.to.at, "to"),
        // A container given by `from: POD/CONTAINER` is wrong in `from`.
        Field::Container => case
            .container
            .as_ref()
            .map_or((case.from.at, "from"), |t| (t.at, "container")),
        Field::Endpoint => case
            .endpoint
            .as_ref()
            .map_or((case.to.at, "to"), |t| (t.at, "endpoint")),
        Field::ViaNode => case.via_node.as_ref().map_or((case.to.at, "to"), |t| (t.at, "viaNode")),
    }
}

/// A case's mistake at the field it is in. A message that ends in suggestions (`no service
/// default/wbe; did you mean web? ...`) gives them as the help.
fn diagnostic_for(case: &TraceCase, p: &CaseProblem, severity: diagnostic::Severity) -> Diagnostic {
    let (at, key) = match (p.branch.and_then(|i| case.branches.get(i)), &p.problem.field) {
        (Some((name, _)), _) => (name.at, "expect"),
        (None, field) => case_field(case, field),
    };
    let p = &p.problem;
    let (message, help) = match p.message.split_once("; ") {
        Some((m, h)) => (m.to_owned(), Some(h.to_owned())),
        None => (p.message.clone(), None),
    };
    let d = Diagnostic {
        severity,
        message: format!("trace case `{key}`: {message}"),
        at: None,
        label: Some("cannot be resolved".to_owned()),
        help: None,
    }
    .at(at);
    match help {
        Some(h) => d.help(h),
        None => d,
    }
}

fn report(case: &TraceCase, traces: &[Trace], addresses: &[std::net::Ipv4Addr], scenario: &str) -> CaseReport {
    let text = |t: &Option<CaseText>| t.as_ref().map(|t| t.value.clone());
    let (expect, branches, unmatched) = if case.all_endpoints {
        branch_reports(case, traces, addresses, scenario)
    } else {
        (
            render::check::Expect::Verdict(case.expect.clone()),
            Vec::new(),
            Vec::new(),
        )
    };
    // The trace the case's verdict is read from: the first branch that differs, else the first.
    let shown = branches.iter().position(|b| !b.passed).unwrap_or(0);
    let t = &traces[shown.min(traces.len() - 1)];
    let passed = if case.all_endpoints {
        branches.iter().all(|b| b.passed) && unmatched.is_empty()
    } else {
        t.verdict.name() == case.expect
    };
    CaseReport {
        line: case.line,
        from: case.from.value.clone(),
        to: case.to.value.clone(),
        pins: render::check::Pins {
            port: case.port,
            protocol: case.protocol.map(|p| p.lower().to_owned()),
            namespace: text(&case.namespace),
            container: text(&case.container),
            endpoint: text(&case.endpoint),
            via_node: text(&case.via_node),
            all_endpoints: case.all_endpoints,
        },
        expect,
        got: t.verdict,
        passed,
        reason: t.reason.clone(),
        stopped: render::trace::stopped(t),
        reproduce: reproduce(case, scenario, None),
        branches,
        unmatched,
    }
}

/// Each branch of an `allEndpoints` case against its expectation, and the endpoints a
/// per-branch `expect` names that no branch reaches.
fn branch_reports(
    case: &TraceCase,
    traces: &[Trace],
    addresses: &[std::net::Ipv4Addr],
    scenario: &str,
) -> (render::check::Expect, Vec<render::check::BranchReport>, Vec<String>) {
    use render::check::{BranchReport, Expect};
    let per_branch = !case.branches.is_empty();
    let expect = if per_branch {
        Expect::PerBranch(
            case.branches
                .iter()
                .map(|(k, v)| (k.value.clone(), v.clone()))
                .collect(),
        )
    } else {
        Expect::Verdict(case.expect.clone())
    };
    let addresses: Vec<(&str, std::net::Ipv4Addr)> = case
        .branches
        .iter()
        .map(|(name, _)| name.value.as_str())
        .zip(addresses.iter().copied())
        .collect();
    let mut met = vec![false; case.branches.len()];
    let reports = traces
        .iter()
        .map(|t| {
            let chosen = render::trace::chosen_branch(t);
            let at = chosen.and_then(|b| b.to).map(|to| *to.ip());
            let index = at.and_then(|ip| addresses.iter().position(|(_, a)| *a == ip));
            if let Some(i) = index {
                met[i] = true;
            }
            let expect = match (per_branch, index) {
                (false, _) => Some(case.expect.clone()),
                (true, Some(i)) => Some(case.branches[i].1.clone()),
                (true, None) => None,
            };
            let endpoint = chosen.map_or_else(|| "the only path".to_owned(), render::trace::branch_target);
            // The branch's pod, as `--endpoint` takes it.
            let pin = chosen.and_then(|b| b.endpoint.clone());
            BranchReport {
                passed: expect.as_deref() == Some(t.verdict.name()),
                endpoint,
                pod: pin.clone(),
                expect,
                got: t.verdict,
                reason: t.reason.clone(),
                stopped: render::trace::stopped(t),
                reproduce: reproduce(case, scenario, pin.as_deref()),
            }
        })
        .collect();
    let unmatched = addresses
        .iter()
        .zip(&met)
        .filter(|(_, m)| !**m)
        .map(|((name, _), _)| (*name).to_owned())
        .collect();
    (expect, reports, unmatched)
}

/// The `k8snet trace` command that shows the case's whole trace, or with `branch` the trace
/// of the branch to that endpoint pod.
fn reproduce(case: &TraceCase, scenario: &str, branch: Option<&str>) -> String {
    let mut words: Vec<String> = vec!["k8snet".into(), "trace".into()];
    let mut push = |flag: &str, value: &str| {
        words.push(flag.to_owned());
        words.push(shell_word(value));
    };
    if scenario != super::DEMO_NAME {
        push("-f", scenario);
    }
    push("--from", &case.from.value);
    push("--to", &case.to.value);
    if let Some(p) = case.port {
        push("--port", &p.to_string());
    }
    if let Some(p) = case.protocol {
        push("--protocol", p.lower());
    }
    for (flag, value) in [
        ("-n", &case.namespace),
        ("-c", &case.container),
        ("--endpoint", &case.endpoint),
        ("--via-node", &case.via_node),
    ] {
        if let Some(v) = value {
            push(flag, &v.value);
        }
    }
    match branch {
        Some(pod) => push("--endpoint", pod),
        None if case.all_endpoints => words.push("--all-endpoints".into()),
        None => {}
    }
    words.join(" ")
}

/// A word as a POSIX shell reads it back: bare when it is plain, else single-quoted.
fn shell_word(w: &str) -> String {
    let plain = !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:@=+,%".contains(c));
    if plain {
        w.to_owned()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::shell_word;

    #[test]
    fn shell_words_survive_the_shell() {
        assert_eq!(shell_word("svc/web"), "svc/web");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(shell_word(""), "''");
    }
}
