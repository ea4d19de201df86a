//! `k8snet import`: manifests in, the scenario format out.

use std::path::PathBuf;

use super::{EXIT_BAD_INPUT, EXIT_OK, Outcome, read_sources, usage};
use crate::diagnostic::{self, Diagnostic};
use crate::input::manifest;
use crate::render;

pub fn run(paths: &[PathBuf], max_input: u64, color: bool) -> Outcome {
    if paths.is_empty() {
        return usage("import needs the manifests to convert: a file, a directory, or - for stdin".into());
    }
    let inputs = match read_sources(paths, max_input, color) {
        Ok(sources) => super::joined(paths, sources),
        Err(o) => return o,
    };
    let fail = |mut diags: Vec<Diagnostic>| {
        diagnostic::sort(&mut diags);
        Outcome {
            stderr: render::diagnostics::render_inputs(&inputs, &diags, color),
            code: EXIT_BAD_INPUT,
            ..Outcome::default()
        }
    };
    let parsed = match manifest::parse(&inputs) {
        Ok(p) => p,
        Err(d) => return fail(d),
    };
    let Some(report) = &parsed.manifest else {
        return usage(format!(
            "{} is a scenario already: import reads Kubernetes manifests (objects with apiVersion and kind)",
            inputs.source.name
        ));
    };
    // The scenario written must load: the model's checks run here as they will there.
    let mut problems = parsed.diagnostics.clone();
    match crate::model::build(&parsed.scenario) {
        Ok(built) => problems.extend(built.warnings),
        Err(more) => problems.extend(more),
    }
    if problems.iter().any(Diagnostic::is_error) {
        return fail(problems);
    }
    diagnostic::sort(&mut problems);
    Outcome {
        stdout: render::import::scenario(&parsed.scenario, &inputs, report),
        stderr: if problems.is_empty() {
            String::new()
        } else {
            render::diagnostics::render_inputs(&inputs, &problems, color)
        },
        code: EXIT_OK,
    }
}
