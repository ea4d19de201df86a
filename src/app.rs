//! What the user's command means: which scenario to load, what to build from it, and what to
//! print. Returns the output and exit code; the binary does the writing.

use std::path::{Path, PathBuf};

mod batch;
mod check;
mod explain;
mod generate;
mod import;
mod load;

use crate::cli::{Cli, ColorWhen, Command, Format, GenerateArgs, GenerateFormat, PortArg, ProtocolArg};
use crate::diagnostic::Diagnostic;
use crate::input::{self, Source};
use crate::model::Cluster;
use crate::render::{self, style::Style};
use crate::sim::netfilter::BranchChoice;
use crate::trace::Trace;
pub use load::load;
pub(crate) use load::{joined, read_sources};

/// The demo cluster, compiled into the binary so the tool works with no file at all.
pub const DEMO: &str = include_str!("../scenarios/demo.yaml");
pub const DEMO_NAME: &str = "<built-in demo>";
/// How a scenario read from standard input is named in messages.
pub const STDIN_NAME: &str = "<stdin>";

pub const EXIT_OK: u8 = 0;
pub const EXIT_DROPPED: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;

/// What a run produced: text for stdout, text for stderr, and the exit code.
#[derive(Debug, Default)]
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub code: u8,
}

pub struct Loaded {
    /// The input's text: one file's, or every file's joined (see [`input::sources`]).
    pub source: Source,
    pub parts: Vec<input::sources::Part>,
    /// For manifests: what was assumed and skipped.
    pub manifest: Option<input::manifest::Report>,
    pub cluster: Cluster,
    pub warnings: Vec<Diagnostic>,
}

/// Decides colour from `--color`, `NO_COLOR`, `CLICOLOR_FORCE` and whether the output is a
/// terminal. An explicit `--color always|never` wins over the environment.
pub fn style_for(when: ColorWhen, is_terminal: bool) -> Style {
    let env = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    Style {
        color: wants_color(when, is_terminal, env("NO_COLOR"), env("CLICOLOR_FORCE")),
    }
}

fn wants_color(when: ColorWhen, is_terminal: bool, no_color: bool, force: bool) -> bool {
    match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => !no_color && (force || is_terminal),
    }
}

/// The inputs a subcommand names: its positional file, then every -f.
fn paths_of(file: &Option<PathBuf>, scenario: &crate::cli::ScenarioArgs) -> Vec<PathBuf> {
    file.iter().chain(&scenario.scenario).cloned().collect()
}

pub fn run(cli: &Cli, stdout_is_terminal: bool, stderr_is_terminal: bool) -> Outcome {
    let style = style_for(cli.color, stdout_is_terminal);
    let err_color = style_for(cli.color, stderr_is_terminal).color;
    match &cli.command {
        Command::Trace { .. } => trace_command(cli, style, err_color),
        Command::Generate(args) => generate_command(args),
        Command::Import { file, scenario } => import::run(&paths_of(file, scenario), cli.max_input_size, err_color),
        Command::Completions { shell } => completions(*shell),
        Command::Man { subcommand } => man_page(subcommand.as_deref()),
        Command::Check {
            file,
            scenario,
            output,
            junit,
        } => check::run(
            &check::Options {
                paths: &paths_of(file, scenario),
                max_input: cli.max_input_size,
                output: *output,
                junit: junit.as_deref(),
            },
            style,
            err_color,
        ),
        Command::Materialize {
            file,
            scenario,
            prefix,
            teardown,
        } => materialize_command(
            &paths_of(file, scenario),
            prefix,
            *teardown,
            cli.max_input_size,
            err_color,
        ),
        Command::Explain {
            file,
            scenario,
            node,
            service,
            namespace,
            output,
        } => explain::run(
            &explain::Options {
                paths: &paths_of(file, scenario),
                max_input: cli.max_input_size,
                node: node.as_deref(),
                service: service.as_deref(),
                namespace,
                output: *output,
            },
            style,
            err_color,
        ),
    }
}

/// One trace the user asked for, from the command line or a batch line, before its names are
/// resolved.
pub(crate) struct Request {
    /// The batch line it came from.
    pub line: Option<usize>,
    pub from: String,
    pub to: String,
    pub container: Option<String>,
    pub port: Option<PortArg>,
    pub protocol: Option<ProtocolArg>,
    pub namespace: String,
    pub endpoint: Option<String>,
    pub all_endpoints: bool,
    pub via_node: Option<String>,
}

fn trace_command(cli: &Cli, style: Style, err_color: bool) -> Outcome {
    let Command::Trace {
        scenario,
        from,
        to,
        options,
        namespace,
        batch,
        output,
        detail,
    } = &cli.command
    else {
        return usage("not a trace".into());
    };
    if batch.as_deref() == Some(Path::new("-")) && scenario.scenario.iter().any(|p| p == Path::new("-")) {
        return usage("the scenario and the batch cannot both come from stdin: give one of them as a file".into());
    }
    let requests: Vec<Request> = match batch {
        Some(file) => match batch::read(file, namespace) {
            Ok(r) => r,
            Err(e) => return usage(e),
        },
        None => to
            .iter()
            .map(|to| Request {
                line: None,
                from: from.clone().unwrap_or_default(),
                to: to.clone(),
                container: options.container.clone(),
                port: options.port.clone(),
                protocol: options.protocol,
                namespace: namespace.clone(),
                endpoint: options.endpoint.clone(),
                all_endpoints: options.all_endpoints,
                via_node: options.via_node.clone(),
            })
            .collect(),
    };
    let loaded = match load(&scenario.scenario, cli.max_input_size, err_color) {
        Ok(l) => l,
        Err(o) => return o,
    };
    let c = &loaded.cluster;
    let state = crate::compile::compile(c);
    // One group of traces per request: several when it asks for every endpoint.
    let mut groups: Vec<(Option<usize>, Vec<Trace>)> = Vec::with_capacity(requests.len());
    for r in &requests {
        match traces_for(c, &state, r) {
            Ok(t) => groups.push((r.line, t)),
            Err(e) => match (batch, r.line) {
                (Some(file), Some(line)) => return usage(format!("{}:{line}: {e}", batch::shown(file))),
                _ => return usage(e),
            },
        }
    }
    let traces: Vec<(Option<usize>, &Trace)> = groups
        .iter()
        .flat_map(|(line, ts)| ts.iter().map(move |t| (*line, t)))
        .collect();
    let code = if traces.iter().all(|(_, t)| t.verdict.is_success()) {
        EXIT_OK
    } else {
        EXIT_DROPPED
    };
    let detail = if *detail {
        render::trace::Detail::Full
    } else {
        render::trace::Detail::Brief
    };
    // Only the reports for machines name the input by its digest, which takes a while on a
    // 1 GB dump.
    let scenario_ref = || loaded.scenario_ref();
    let stdout = match (output, batch.is_some()) {
        (Format::Json, true) => {
            let scenario_ref = scenario_ref();
            groups
                .iter()
                .map(|(line, ts)| {
                    let ts: Vec<&Trace> = ts.iter().collect();
                    render::trace::json_line(&scenario_ref, line.unwrap_or_default(), &ts)
                })
                .collect()
        }
        (Format::Yaml, true) => {
            let scenario_ref = scenario_ref();
            groups
                .iter()
                .map(|(line, ts)| {
                    let ts: Vec<&Trace> = ts.iter().collect();
                    render::trace::yaml_document(&scenario_ref, line.unwrap_or_default(), &ts)
                })
                .collect()
        }
        (Format::Text, true) => loaded.framed(render::trace::summary(&traces, style)),
        (Format::Mermaid | Format::Dot, _) if traces.len() > 1 => {
            return usage(
                "a diagram draws one trace: pick one --to, and a branch with --endpoint instead of --all-endpoints"
                    .into(),
            );
        }
        (Format::Mermaid, _) => render::trace::mermaid(traces[0].1),
        (Format::Dot, _) => render::trace::dot(traces[0].1),
        (Format::Json, false) => {
            let traces: Vec<&Trace> = traces.iter().map(|(_, t)| *t).collect();
            render::trace::json(&scenario_ref(), &traces)
        }
        (Format::Yaml, false) => {
            let traces: Vec<&Trace> = traces.iter().map(|(_, t)| *t).collect();
            render::trace::yaml(&scenario_ref(), &traces)
        }
        (Format::Text, false) => {
            let texts: Vec<String> = groups
                .iter()
                .map(|(_, ts)| render::trace::texts(ts, style, detail))
                .collect();
            loaded.framed(texts.join("\n") + &render::trace::footer(style, detail))
        }
    };
    let stderr = match output {
        Format::Text => String::new(),
        _ if batch.is_some() => loaded.notes(),
        Format::Mermaid | Format::Dot => loaded.notes(),
        Format::Json | Format::Yaml => String::new(),
    };
    // What manifests left unresolved bears on the trace, so it is said with it.
    let stderr = match (&loaded.manifest, loaded.warnings.is_empty()) {
        (Some(_), false) => stderr + &loaded.render(&loaded.warnings, err_color),
        _ => stderr,
    };
    drop(traces);
    drop(groups);
    drop_aside((loaded, state));
    Outcome { stdout, stderr, code }
}

/// Frees what a command built on a thread of its own, so the answer does not wait for millions
/// of objects to be taken apart; when the process ends first, the system reclaims them.
pub(crate) fn drop_aside<T: Send + 'static>(built: T) {
    // Should no thread start, the closure and what it holds are dropped here instead.
    let _ = std::thread::Builder::new()
        .name("drop".into())
        .spawn(move || drop(built));
}

/// The traces one request asks for: one, or one per endpoint branch with --all-endpoints.
fn traces_for(c: &Cluster, state: &crate::net::NetState, r: &Request) -> Result<Vec<Trace>, String> {
    let mut query = crate::resolve::Query {
        from: &r.from,
        container: r.container.as_deref(),
        to: &r.to,
        port: match r.port {
            Some(PortArg::Number(n)) => Some(n),
            _ => None,
        },
        port_name: match &r.port {
            Some(PortArg::Name(n)) => Some(n.as_str()),
            _ => None,
        },
        protocol: r.protocol.map(|p| match p {
            ProtocolArg::Tcp => crate::net::Protocol::Tcp,
            ProtocolArg::Udp => crate::net::Protocol::Udp,
            ProtocolArg::Sctp => crate::net::Protocol::Sctp,
            ProtocolArg::Icmp => crate::net::Protocol::Icmp,
        }),
        namespace: &r.namespace,
        endpoint: None,
        via_node: r.via_node.as_deref(),
    };
    let endpoint_ip = match &r.endpoint {
        Some(name) => Some(crate::resolve::endpoint_address(c, state, &query, name).map_err(|p| p.for_command_line())?),
        None => None,
    };
    query.endpoint = endpoint_ip;
    let choice = match endpoint_ip {
        Some(ip) => BranchChoice::pinned(vec![ip]),
        None => BranchChoice::default(),
    };
    let first = crate::tracer::trace(c, state, &query, choice.clone())?;
    if r.all_endpoints {
        every_branch(c, state, &query, &choice, first)
    } else {
        Ok(vec![first])
    }
}

/// One trace per branch of the last endpoint decision `first` met (the endpoint's, after any
/// load balancer's), or `first` alone if it met none.
pub(crate) fn every_branch(
    c: &Cluster,
    state: &crate::net::NetState,
    query: &crate::resolve::Query<'_>,
    choice: &BranchChoice,
    first: Trace,
) -> Result<Vec<Trace>, String> {
    match crate::tracer::endpoint_decision(&first) {
        Some((decision, branches)) => (0..branches)
            .map(|n| {
                let each = BranchChoice {
                    nth: Some((decision, n)),
                    ..choice.clone()
                };
                crate::tracer::trace(c, state, query, each)
            })
            .collect(),
        None => Ok(vec![first]),
    }
}

/// A shell's completion script, from the same definitions that parse the command line.
fn completions(shell: clap_complete::Shell) -> Outcome {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "k8snet", &mut out);
    Outcome {
        stdout: String::from_utf8_lossy(&out).into_owned(),
        ..Outcome::default()
    }
}

/// The manual page in roff: the overview (`k8snet(1)`), or a subcommand's (`k8snet-trace(1)`).
fn man_page(subcommand: Option<&str>) -> Outcome {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let page = match subcommand {
        None => cmd,
        Some(name) => match cmd.find_subcommand(name) {
            Some(sub) => sub.clone().name(format!("k8snet-{name}")),
            None => {
                let names: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).collect();
                return usage(format!("no subcommand {name}; subcommands: {}", names.join(", ")));
            }
        },
    };
    let mut out = Vec::new();
    match clap_mangen::Man::new(page).render(&mut out) {
        Ok(()) => Outcome {
            stdout: String::from_utf8_lossy(&out).into_owned(),
            ..Outcome::default()
        },
        Err(e) => usage(format!("cannot render the manual page: {e}")),
    }
}

fn generate_command(args: &GenerateArgs) -> Outcome {
    let plan = match crate::generate::Plan::new(generate::options(args)) {
        Ok(p) => p,
        Err(e) => return usage(e),
    };
    let stdout = match (args.queries, args.format) {
        (Some(n), _) => crate::generate::queries(&plan, n),
        (None, GenerateFormat::Yaml) => crate::generate::scenario(&plan, crate::generate::Format::Yaml),
        (None, GenerateFormat::Json) => crate::generate::scenario(&plan, crate::generate::Format::Json),
        (None, GenerateFormat::KubectlJson) => crate::generate::kubectl::list(&plan),
    };
    Outcome {
        stdout,
        ..Outcome::default()
    }
}

/// Writes the build (or teardown) script; the scenario's warnings still go to stderr.
fn materialize_command(paths: &[PathBuf], prefix: &str, teardown: bool, max_input: u64, err_color: bool) -> Outcome {
    use render::materialize;
    if let Err(e) = materialize::validate_prefix(prefix) {
        return usage(e);
    }
    let loaded = match load(paths, max_input, err_color) {
        Ok(l) => l,
        Err(o) => return o,
    };
    let state = crate::compile::compile(&loaded.cluster);
    let script = if teardown {
        materialize::teardown(&state, prefix, &loaded.source.name)
    } else {
        materialize::build(&state, prefix, &loaded.source.name)
    };
    match script {
        Ok(stdout) => Outcome {
            stdout,
            stderr: if loaded.warnings.is_empty() {
                loaded.notes()
            } else {
                loaded.notes() + &loaded.render(&loaded.warnings, err_color)
            },
            code: EXIT_OK,
        },
        Err(e) => usage(format!("cannot materialize {}: {e}", loaded.source.name)),
    }
}

/// A usage error. Its message may quote what the user typed or a file name, so control
/// characters in it are shown, not sent to the terminal.
pub fn usage(message: String) -> Outcome {
    Outcome {
        stderr: format!("error: {}\n", render::untrusted::escape(&message)),
        code: EXIT_BAD_INPUT,
        ..Outcome::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_unless_asked() {
        assert!(wants_color(ColorWhen::Auto, true, false, false));
        assert!(!wants_color(ColorWhen::Auto, false, false, false));
        assert!(!wants_color(ColorWhen::Auto, true, true, false), "NO_COLOR is honoured");
        assert!(
            wants_color(ColorWhen::Auto, false, false, true),
            "CLICOLOR_FORCE is honoured"
        );
        assert!(wants_color(ColorWhen::Always, false, true, false));
        assert!(!wants_color(ColorWhen::Never, true, false, true));
    }

    #[test]
    fn plain_tables_carry_no_escape_sequences() {
        let loaded = load(&[], input::read::DEFAULT_MAX_INPUT, false).unwrap_or_else(|o| panic!("{}", o.stderr));
        let state = crate::compile::compile(&loaded.cluster);
        let filter = render::explain::Filter::default();
        let shown = render::explain::shown(&loaded.cluster, &filter);
        let facts = crate::compile::facts::gather(&loaded.cluster, &state, &shown.services, shown.whole);
        let out = render::explain::render(&loaded.cluster, &state, &facts, &filter, Style::PLAIN);
        assert!(!out.contains('\x1b'));
    }
}
