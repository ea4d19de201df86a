//! `k8snet explain`: the cluster as Linux holds it, as text for people or as one document
//! (`-o json|yaml`) for machines.

use super::{EXIT_OK, Outcome, check, load, usage};
use crate::cli::ReportFormat;
use crate::diagnostic;
use crate::render::{self, style::Style};

pub struct Options<'a> {
    pub paths: &'a [std::path::PathBuf],
    pub max_input: u64,
    pub node: Option<&'a str>,
    /// As typed: `NAME`, `NAMESPACE/NAME`, `svc/NAME`.
    pub service: Option<&'a str>,
    /// For a `service` that carries none.
    pub namespace: &'a str,
    pub output: ReportFormat,
}

pub fn run(o: &Options<'_>, style: Style, err_color: bool) -> Outcome {
    let loaded = match load(o.paths, o.max_input, err_color) {
        Ok(l) => l,
        Err(o) => return o,
    };
    if let Some(n) = o.node
        && loaded.cluster.node_named(n).is_none()
    {
        return usage(format!(
            "{}: {}",
            loaded.source.name,
            crate::resolve::names::no_node(&loaded.cluster, n)
        ));
    }
    // The filter names the Service as the renderer lists it: `namespace/name`.
    let service = match o.service {
        Some(s) => {
            let bare = ["svc/", "service/", "services/"]
                .iter()
                .find_map(|k| s.strip_prefix(k))
                .unwrap_or(s);
            let (ns, name) = bare.split_once('/').unwrap_or((o.namespace, bare));
            match loaded.cluster.service_named(ns, name) {
                Some(i) => Some(loaded.cluster.services[i].qualified_name()),
                None => {
                    return usage(format!(
                        "{}: {}",
                        loaded.source.name,
                        crate::resolve::names::no_service(&loaded.cluster, ns, name)
                    ));
                }
            }
        }
        None => None,
    };
    let filter = render::explain::Filter {
        node: o.node.map(str::to_owned),
        service,
    };
    let state = crate::compile::compile(&loaded.cluster);
    let (services, whole) = match o.output {
        ReportFormat::Text => {
            let shown = render::explain::shown(&loaded.cluster, &filter);
            (shown.services, shown.whole)
        }
        ReportFormat::Json | ReportFormat::Yaml => render::explain_data::services(&loaded.cluster, &filter),
    };
    let facts = crate::compile::facts::gather(&loaded.cluster, &state, &services, whole);
    let mut warnings = loaded.warnings.clone();
    warnings.extend(check::case_warnings(&loaded.cluster, &state));
    diagnostic::sort(&mut warnings);
    Outcome {
        stdout: match o.output {
            ReportFormat::Text => {
                loaded.framed(render::explain::render(&loaded.cluster, &state, &facts, &filter, style))
            }
            ReportFormat::Json | ReportFormat::Yaml => {
                let doc =
                    render::explain_data::document(&loaded.scenario_ref(), &loaded.cluster, &state, &facts, &filter);
                if o.output == ReportFormat::Json {
                    serde_json::to_string_pretty(&doc).map_or_else(|e| format!("error: {e}\n"), |s| s + "\n")
                } else {
                    render::yaml(&doc)
                }
            }
        },
        stderr: if warnings.is_empty() {
            String::new()
        } else {
            loaded.render(&warnings, err_color)
        },
        code: EXIT_OK,
    }
}
