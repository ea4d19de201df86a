//! The documents that list the verdicts list all of them: a verdict added to the code and not
//! to the docs fails here.

use k8snet::trace::Verdict;

/// The verdict names a paragraph of `doc` quotes, from the line starting with `intro` to the
/// blank line after it.
fn listed(doc: &str, intro: &str) -> Vec<String> {
    let text = std::fs::read_to_string(doc).unwrap();
    let start = text
        .find(intro)
        .unwrap_or_else(|| panic!("{doc} has no paragraph starting {intro:?}"));
    let paragraph = text[start..].split("\n\n").next().unwrap();
    paragraph.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

#[test]
fn scenario_format_lists_every_verdict() {
    let names = listed("docs/scenario.md", "The verdict names are:");
    for v in Verdict::ALL {
        assert!(
            names.iter().any(|n| n == v.name()),
            "docs/scenario.md does not list {}",
            v.name()
        );
    }
    for n in &names {
        assert!(
            Verdict::ALL.iter().any(|v| v.name() == n),
            "docs/scenario.md lists {n}, which is no verdict"
        );
    }
}

#[test]
fn trace_docs_explain_every_verdict() {
    let text = std::fs::read_to_string("docs/trace.md").unwrap();
    let section = text
        .split("## Verdicts")
        .nth(1)
        .expect("docs/trace.md has a Verdicts section");
    // A row may explain several verdicts at once: `filtered` / `rejected`.
    let first_cells: Vec<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split(" |").next())
        .collect();
    for v in Verdict::ALL {
        let quoted = format!("{}`", v.name());
        assert!(
            first_cells
                .iter()
                .any(|cell| cell.starts_with(&quoted) || cell.contains(&format!("`{quoted}"))),
            "docs/trace.md has no row for {}",
            v.name()
        );
    }
}

/// The verdict enums of the JSON schemas are the verdict set.
#[test]
fn schemas_list_every_verdict() {
    let names: Vec<&str> = Verdict::ALL.iter().map(|v| v.name()).collect();
    for (doc, pointer) in [
        ("docs/trace.schema.json", "/$defs/trace/properties/verdict/enum"),
        ("docs/check.schema.json", "/$defs/verdict/enum"),
    ] {
        let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(doc).unwrap()).unwrap();
        let listed: Vec<&str> = schema
            .pointer(pointer)
            .and_then(|e| e.as_array())
            .unwrap_or_else(|| panic!("{doc} has no {pointer}"))
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert_eq!(listed, names, "{doc}");
    }
}
