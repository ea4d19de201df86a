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
    pub path: Option<&'a Path>,
    pub max_input: u64,
    pub output: crate::cli::ReportFormat,
    pub junit: Option<&'a Path>,
}

pub fn run(o: &Options<'_>, style: Style, err_color: bool) -> Outcome {
    let loaded = match load(o.path, o.max_input, err_color) {
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
            Ok(t) => cases.push(report(case, &t, &loaded.source.name)),
            Err(p) => problems.push(diagnostic_for(case, &p, diagnostic::Severity::Error)),
        }
    }
    if !problems.is_empty() {
        let mut all = loaded.warnings.clone();
        all.extend(problems);
        diagnostic::sort(&mut all);
        return Outcome {
            stderr: render::diagnostics::render(&loaded.source, &all, err_color),
            code: EXIT_BAD_INPUT,
            ..Outcome::default()
        };
    }
    let report = render::check::Report::new(render::ScenarioRef::of(&loaded.source), cases);
    if let Some(file) = o.junit
        && let Err(e) = std::fs::write(file, render::check::junit(&report))
    {
        return usage(format!("cannot write the JUnit report {}: {e}", file.display()));
    }
    Outcome {
        stdout: match o.output {
            crate::cli::ReportFormat::Json => render::check::json(&report),
            crate::cli::ReportFormat::Yaml => render::check::yaml(&report),
            crate::cli::ReportFormat::Text => render::check::text(&report, style),
        },
        stderr: if loaded.warnings.is_empty() {
            String::new()
        } else {
            render::diagnostics::render(&loaded.source, &loaded.warnings, err_color)
        },
        code: if report.failed == 0 { EXIT_OK } else { EXIT_DROPPED },
    }
}

/// Warnings for the cases that cannot be traced, for `explain`.
pub fn case_warnings(c: &Cluster, state: &NetState) -> Vec<Diagnostic> {
    c.traces
        .iter()
        .filter_map(|case| resolve_case(c, state, case).err())
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

/// The case's names, checked without tracing.
fn resolve_case<'a>(c: &Cluster, state: &NetState, case: &'a TraceCase) -> Result<(), (&'a TraceCase, Problem)> {
    let mut q = query(case);
    if let Some(e) = &case.endpoint {
        q.endpoint = Some(crate::resolve::endpoint_address(c, state, &q, &e.value).map_err(|p| (case, p))?);
    }
    crate::resolve::resolve_fields(c, state, &q)
        .map(|_| ())
        .map_err(|p| (case, p))
}

fn trace_case(c: &Cluster, state: &NetState, case: &TraceCase) -> Result<Trace, Problem> {
    resolve_case(c, state, case).map_err(|(_, p)| p)?;
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

/// A case's mistake at the field it is in. A message that ends in suggestions (`no service
/// default/wbe; did you mean web? ...`) gives them as the help.
fn diagnostic_for(case: &TraceCase, p: &Problem, severity: diagnostic::Severity) -> Diagnostic {
    let (at, key) = match p.field {
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
    };
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

fn report(case: &TraceCase, t: &Trace, scenario: &str) -> CaseReport {
    let text = |t: &Option<CaseText>| t.as_ref().map(|t| t.value.clone());
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
        },
        expect: case.expect.clone(),
        got: t.verdict,
        passed: t.verdict.name() == case.expect,
        reason: t.reason.clone(),
        stopped: render::trace::stopped(t),
        reproduce: reproduce(case, scenario),
    }
}

/// The `k8snet trace` command that shows the case's whole trace.
fn reproduce(case: &TraceCase, scenario: &str) -> String {
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
