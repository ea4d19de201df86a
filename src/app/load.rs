//! Reading what a command names (files, directories, stdin, the demo) and loading it: a
//! scenario or manifests, decoded and validated; and how a loaded input frames the output.

use std::path::{Path, PathBuf};

use super::{DEMO, DEMO_NAME, EXIT_BAD_INPUT, Loaded, Outcome, STDIN_NAME};
use crate::diagnostic::{self, Diagnostic};
use crate::input::{self, Source};
use crate::model;
use crate::render;

/// Reads every input named: the files and directories given, else `K8SNET_SCENARIO`, else
/// the built-in demo. Together they may hold at most `max_input` bytes.
pub(crate) fn read_sources(paths: &[PathBuf], max_input: u64, color: bool) -> Result<Vec<Source>, Outcome> {
    let from_env = paths.is_empty();
    let paths: Vec<PathBuf> = if from_env {
        std::env::var_os("K8SNET_SCENARIO")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .into_iter()
            .collect()
    } else {
        paths.to_vec()
    };
    // A path the user did not type on this command line is traced back to where it came from.
    let named_by = if from_env { " (named by K8SNET_SCENARIO)" } else { "" };
    if paths.is_empty() {
        return Ok(vec![Source {
            name: DEMO_NAME.to_owned(),
            text: DEMO.to_owned(),
        }]);
    }
    let cannot = |p: &Path, e: &dyn std::fmt::Display| Outcome {
        stderr: format!(
            "error: cannot read scenario {}{named_by}: {e}\n",
            render::untrusted::escape(&p.display().to_string())
        ),
        code: EXIT_BAD_INPUT,
        ..Outcome::default()
    };
    let mut files = Vec::new();
    for p in &paths {
        if p == Path::new("-") {
            files.push(p.clone());
            continue;
        }
        match input::sources::expand(p) {
            Ok(found) if found.is_empty() => {
                return Err(cannot(p, &"the directory holds no .yaml, .yml or .json file"));
            }
            Ok(found) => files.extend(found),
            Err(e) => return Err(cannot(p, &e)),
        }
    }
    let mut left = max_input;
    let mut sources = Vec::with_capacity(files.len());
    for p in &files {
        let read = if p == Path::new("-") {
            stdin_source(left)
        } else {
            input::read::file(p, left)
        };
        match read {
            Ok(source) => {
                left = left.saturating_sub(source.text.len() as u64);
                sources.push(source);
            }
            Err(input::read::ReadError::Io(e)) => return Err(cannot(p, &e)),
            Err(input::read::ReadError::Refused(refused)) => {
                let (source, mut d) = *refused;
                if files.len() > 1 && d.message.contains("input limit") {
                    d.message = format!(
                        "the {} files read together are larger than the input limit of {}",
                        files.len(),
                        input::read::size(max_input)
                    );
                }
                return Err(Outcome {
                    stderr: render::diagnostics::render(&source, &[d], color),
                    code: EXIT_BAD_INPUT,
                    ..Outcome::default()
                });
            }
        }
    }
    Ok(sources)
}

/// The files read, joined; several are named as the command line named them (a directory by
/// its own path), so messages and reports say what the user typed.
pub(crate) fn joined(paths: &[PathBuf], sources: Vec<Source>) -> input::sources::Inputs {
    let mut inputs = input::sources::Inputs::join(sources);
    if inputs.parts.len() > 1 {
        let named: Vec<String> = paths
            .iter()
            .map(|p| match p.to_str() {
                Some("-") => STDIN_NAME.to_owned(),
                _ => p.display().to_string(),
            })
            .collect();
        if !named.is_empty() {
            inputs.source.name = named.join(", ");
        }
    }
    inputs
}

/// The scenario from standard input (`-f -`), under the same limit as a file.
fn stdin_source(max_input: u64) -> Result<Source, input::read::ReadError> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(max_input.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(input::read::ReadError::Io)?;
    if bytes.len() as u64 > max_input {
        let source = Source {
            name: STDIN_NAME.to_owned(),
            text: String::new(),
        };
        let d = Diagnostic::error(format!(
            "the scenario is larger than the input limit of {}",
            input::read::size(max_input)
        ))
        .help("raise the limit with --max-input-size (for example --max-input-size 4GiB)");
        return Err(input::read::ReadError::Refused(Box::new((source, d))));
    }
    input::read::text(STDIN_NAME.to_owned(), bytes)
}

/// Reads, decodes and validates a scenario (or manifests); on failure the outcome carries
/// every diagnostic.
pub fn load(paths: &[PathBuf], max_input: u64, color: bool) -> Result<Loaded, Outcome> {
    let inputs = joined(paths, read_sources(paths, max_input, color)?);
    let fail = |inputs: &input::sources::Inputs, mut diags: Vec<Diagnostic>| {
        diagnostic::sort(&mut diags);
        Outcome {
            stderr: render::diagnostics::render_inputs(inputs, &diags, color),
            code: EXIT_BAD_INPUT,
            ..Outcome::default()
        }
    };
    let parsed = input::manifest::parse(&inputs).map_err(|d| fail(&inputs, d))?;
    let mut problems = parsed.diagnostics;
    let built = match model::build(&parsed.scenario) {
        Ok(built) if !problems.iter().any(Diagnostic::is_error) => built,
        Ok(built) => {
            problems.extend(built.warnings);
            return Err(fail(&inputs, problems));
        }
        Err(more) => {
            // With no readable `cluster:` block validation can only say that it built nothing,
            // without a place; the decoder has already said why.
            let nothing_built = matches!(more.as_slice(), [only] if only.at.is_none());
            if !(nothing_built && problems.iter().any(Diagnostic::is_error)) {
                problems.extend(more);
            }
            return Err(fail(&inputs, problems));
        }
    };
    let mut warnings = built.warnings;
    warnings.extend(problems);
    diagnostic::sort(&mut warnings);
    Ok(Loaded {
        source: inputs.source,
        parts: inputs.parts,
        manifest: parsed.manifest,
        cluster: built.cluster,
        warnings,
    })
}

impl Loaded {
    /// Diagnostics rendered against the input, each naming its own file.
    pub fn render(&self, diagnostics: &[Diagnostic], color: bool) -> String {
        let parts = if self.parts.len() > 1 { &self.parts[..] } else { &[] };
        render::diagnostics::render_with_parts(&self.source, parts, diagnostics, color)
    }

    /// The input as reports name it, with what reading manifests assumed and skipped.
    pub fn scenario_ref(&self) -> render::ScenarioRef {
        let mut r = render::ScenarioRef::of(&self.source);
        if let Some(m) = &self.manifest {
            r.manifests = Some(m.clone());
        }
        r
    }

    /// Text output framed by what reading manifests assumed (first) and skipped (last).
    pub fn framed(&self, body: String) -> String {
        let Some(m) = &self.manifest else { return body };
        let mut out: String = m.assumptions.iter().map(|a| format!("assumption: {a}\n")).collect();
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&body);
        if let Some(line) = m.skipped_line() {
            if !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    /// The same facts as notes for stderr, when stdout is a document that must stay valid.
    pub fn notes(&self) -> String {
        let Some(m) = &self.manifest else { return String::new() };
        let mut out: String = m.assumptions.iter().map(|a| format!("assumption: {a}\n")).collect();
        if let Some(line) = m.skipped_line() {
            out.push_str(&line);
            out.push('\n');
        }
        out
    }
}
