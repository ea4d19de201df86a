//! `k8snet check`'s report: one line per trace case for people, JSON for scripts, and JUnit XML
//! for CI systems that show test results.

use std::fmt::Write;

use serde::Serialize;

use crate::render::style::Style;
use crate::render::trace::Stop;
use crate::render::untrusted;
use crate::trace::Verdict;

/// The version of the JSON report's shape; it changes only when a field changes meaning or goes.
pub const SCHEMA_VERSION: u32 = 1;

/// What a case pins beyond its source and destination, as the scenario writes it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Pins {
    pub port: Option<u16>,
    pub protocol: Option<String>,
    pub namespace: Option<String>,
    pub container: Option<String>,
    pub endpoint: Option<String>,
    #[serde(rename = "viaNode")]
    pub via_node: Option<String>,
    #[serde(rename = "allEndpoints")]
    pub all_endpoints: bool,
}

/// What a case expects, as the scenario writes it: one verdict, or one per endpoint branch.
#[derive(Debug, Clone)]
pub enum Expect {
    Verdict(String),
    /// Endpoint pod (as written) to verdict, in the file's order.
    PerBranch(Vec<(String, String)>),
}

impl Serialize for Expect {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Expect::Verdict(v) => s.serialize_str(v),
            Expect::PerBranch(pairs) => {
                let mut map = s.serialize_map(Some(pairs.len()))?;
                for (k, v) in pairs {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Verdict(v) => f.write_str(v),
            Expect::PerBranch(pairs) => {
                let each: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                write!(f, "{{{}}}", each.join(", "))
            }
        }
    }
}

/// One endpoint branch of an `allEndpoints` case.
#[derive(Debug, Clone, Serialize)]
pub struct BranchReport {
    /// The endpoint the branch leads to: `default/web-2 10.0.1.3:8080 on node-1`.
    pub endpoint: String,
    /// The endpoint's pod, `namespace/name`, when the branch leads to one.
    pub pod: Option<String>,
    /// The verdict the case expects of this branch; `null` when a per-branch `expect` does not
    /// name it.
    pub expect: Option<String>,
    pub got: Verdict,
    pub passed: bool,
    pub reason: String,
    pub stopped: Option<Stop>,
    /// The command that shows this branch's trace.
    pub reproduce: String,
}

/// One trace case and what its trace ended in.
#[derive(Debug, Clone, Serialize)]
pub struct CaseReport {
    pub line: u64,
    pub from: String,
    pub to: String,
    pub pins: Pins,
    pub expect: Expect,
    /// The verdict, or with `allEndpoints` that of the first branch that differs (else the
    /// first branch's); `reason` and `stopped` are that branch's too.
    pub got: Verdict,
    pub passed: bool,
    /// Why the trace got its verdict, in words about this packet.
    pub reason: String,
    /// Where a trace that did not get through stopped.
    pub stopped: Option<Stop>,
    /// The command that shows the whole trace.
    pub reproduce: String,
    /// With `allEndpoints`, every branch in kube-proxy's order; otherwise empty.
    pub branches: Vec<BranchReport>,
    /// Endpoints a per-branch `expect` names that no branch leads to.
    pub unmatched: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub scenario: crate::render::ScenarioRef,
    pub cases: Vec<CaseReport>,
    pub passed: usize,
    pub failed: usize,
}

impl Report {
    pub fn new(scenario: crate::render::ScenarioRef, cases: Vec<CaseReport>) -> Report {
        let passed = cases.iter().filter(|c| c.passed).count();
        Report {
            schema_version: SCHEMA_VERSION,
            scenario,
            failed: cases.len() - passed,
            passed,
            cases,
        }
    }
}

/// `expected X, got Y`, for a case or a branch.
fn verdict_summary(expect: Option<&str>, got: Verdict) -> String {
    match expect {
        Some(e) => format!("expected {e}, got {}", got.name()),
        None => format!("not named in expect, got {}", got.name()),
    }
}

fn verdict_detail(summary: &str, stopped: Option<&Stop>, reason: &str) -> String {
    let mut s = summary.to_owned();
    if let Some(stop) = stopped {
        let _ = write!(s, " at hop {} ({}, {})", stop.hop, stop.host, stop.direction);
    }
    let _ = write!(s, ": {reason}");
    s
}

/// The first difference between what a case expects and what it got: in short, in full, and
/// the command that shows it.
struct Difference<'a> {
    summary: String,
    detail: String,
    reproduce: &'a str,
}

fn difference(c: &CaseReport) -> Difference<'_> {
    if let Some(b) = c.branches.iter().find(|b| !b.passed) {
        let summary = format!("branch {}: {}", b.endpoint, verdict_summary(b.expect.as_deref(), b.got));
        return Difference {
            detail: verdict_detail(&summary, b.stopped.as_ref(), &b.reason),
            summary,
            reproduce: &b.reproduce,
        };
    }
    if let Some(u) = c.unmatched.first() {
        let led: Vec<&str> = c.branches.iter().map(|b| b.endpoint.as_str()).collect();
        let summary = format!("no branch leads to {u}");
        return Difference {
            detail: format!("{summary}; the branches lead to {}", led.join("; ")),
            summary,
            reproduce: &c.reproduce,
        };
    }
    let expect = match &c.expect {
        Expect::Verdict(v) => Some(v.as_str()),
        Expect::PerBranch(_) => None,
    };
    let summary = verdict_summary(expect, c.got);
    Difference {
        detail: verdict_detail(&summary, c.stopped.as_ref(), &c.reason),
        summary,
        reproduce: &c.reproduce,
    }
}

/// What a passing case got: the verdict, or each branch's.
fn outcome(c: &CaseReport) -> String {
    if c.branches.is_empty() {
        return c.got.name().to_owned();
    }
    let each: Vec<String> = c
        .branches
        .iter()
        .map(|b| format!("{} {}", b.pod.as_deref().unwrap_or(&b.endpoint), b.got.name()))
        .collect();
    format!("{} branches: {}", c.branches.len(), each.join(", "))
}

pub fn text(r: &Report, style: Style) -> String {
    let mut out = String::new();
    for c in &r.cases {
        let what = format!(
            "line {}: {} -> {}",
            c.line,
            untrusted::escape(&c.from),
            untrusted::escape(&c.to)
        );
        if c.passed {
            let _ = writeln!(out, "{} {what}: {}", style.good("✓"), untrusted::escape(&outcome(c)));
        } else {
            let d = difference(c);
            let _ = writeln!(out, "{} {what}: {}", style.bad("✗"), untrusted::escape(&d.detail));
            let _ = writeln!(out, "    {}", style.dim(&untrusted::escape(d.reproduce)));
        }
    }
    let _ = writeln!(
        out,
        "{} case{}: {} passed, {} failed",
        r.cases.len(),
        if r.cases.len() == 1 { "" } else { "s" },
        r.passed,
        r.failed
    );
    out
}

pub fn json(r: &Report) -> String {
    serde_json::to_string_pretty(r)
        .map(|s| s + "\n")
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}\n"))
}

pub fn yaml(r: &Report) -> String {
    crate::render::yaml(r)
}

/// Text as XML character data or an attribute value. Characters XML 1.0 cannot hold at all
/// (most control characters) are written as `\u{…}`, so a strange name cannot break the file.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(ch),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// A JUnit XML report: one test suite for the scenario, one test case per trace case, a
/// failure for each verdict that differs. Times are 0: a trace is simulated, not timed.
pub fn junit(r: &Report) -> String {
    let suite = xml(&r.scenario.name);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"k8snet check\" tests=\"{}\" failures=\"{}\" errors=\"0\" time=\"0\">",
        r.cases.len(),
        r.failed
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{suite}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"0\" time=\"0\">",
        r.cases.len(),
        r.failed
    );
    for c in &r.cases {
        let name = xml(&format!("line {}: {} -> {} expects {}", c.line, c.from, c.to, c.expect));
        if c.passed {
            let _ = writeln!(out, "    <testcase name=\"{name}\" classname=\"{suite}\" time=\"0\"/>");
            continue;
        }
        let _ = writeln!(out, "    <testcase name=\"{name}\" classname=\"{suite}\" time=\"0\">");
        let d = difference(c);
        let _ = writeln!(
            out,
            "      <failure message=\"{}\" type=\"verdict\">{}\nreproduce: {}</failure>",
            xml(&d.summary),
            xml(&d.detail),
            xml(d.reproduce)
        );
        out.push_str("    </testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_text_cannot_open_a_tag_or_hold_a_control_character() {
        assert_eq!(xml("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
        assert_eq!(xml("x\u{1b}y"), "x\\u{1b}y");
    }
}
