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
}

/// One trace case and what its trace ended in.
#[derive(Debug, Clone, Serialize)]
pub struct CaseReport {
    pub line: u64,
    pub from: String,
    pub to: String,
    pub pins: Pins,
    pub expect: String,
    pub got: Verdict,
    pub passed: bool,
    /// Why the trace got its verdict, in words about this packet.
    pub reason: String,
    /// Where a trace that did not get through stopped.
    pub stopped: Option<Stop>,
    /// The command that shows the whole trace.
    pub reproduce: String,
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

/// The first difference between what a case expects and what it got.
fn difference(c: &CaseReport) -> String {
    let mut s = format!("expected {}, got {}", c.expect, c.got.name());
    if let Some(stop) = &c.stopped {
        let _ = write!(s, " at hop {} ({}, {})", stop.hop, stop.host, stop.direction);
    }
    let _ = write!(s, ": {}", c.reason);
    s
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
            let _ = writeln!(out, "{} {what}: {}", style.good("✓"), c.got.name());
        } else {
            let _ = writeln!(out, "{} {what}: {}", style.bad("✗"), untrusted::escape(&difference(c)));
            let _ = writeln!(out, "    {}", style.dim(&untrusted::escape(&c.reproduce)));
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
        let _ = writeln!(
            out,
            "      <failure message=\"{}\" type=\"verdict\">{}\nreproduce: {}</failure>",
            xml(&format!("expected {}, got {}", c.expect, c.got.name())),
            xml(&difference(c)),
            xml(&c.reproduce)
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
