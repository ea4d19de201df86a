//! What the user typed: the command-line syntax, and nothing about what it means.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "k8snet",
    version,
    about = "Explains Kubernetes networking by tracing a packet through a cluster, hop by hop",
    after_help = "With no scenario file (no argument, no -f, no K8SNET_SCENARIO), the built-in demo cluster is used."
)]
pub struct Cli {
    /// When to colour the output.
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto, global = true)]
    pub color: ColorWhen,

    /// Refuse a scenario file larger than this: bytes, or a number with a unit (512MiB, 4GiB, 1GB).
    #[arg(long, value_name = "SIZE", default_value = "2GiB", value_parser = crate::input::read::parse_size, global = true)]
    pub max_input_size: u64,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args)]
pub struct ScenarioArgs {
    /// The scenario file (YAML or JSON). Defaults to $K8SNET_SCENARIO, then to the built-in demo.
    #[arg(short = 'f', long = "scenario", value_name = "SCENARIO")]
    pub scenario: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Explain a cluster: address plan, nodes' interfaces and routes, Services' kube-proxy rules.
    Explain {
        /// The scenario file (same as -f).
        #[arg(value_name = "SCENARIO", conflicts_with = "scenario")]
        file: Option<PathBuf>,
        #[command(flatten)]
        scenario: ScenarioArgs,
        /// Show only this node.
        #[arg(long)]
        node: Option<String>,
        /// Show only this Service (`name` or `namespace/name`).
        #[arg(long)]
        service: Option<String>,
    },
    /// Run the scenario's `traces:` and compare each verdict with its `expect`.
    Check {
        /// The scenario file (same as -f).
        #[arg(value_name = "SCENARIO", conflicts_with = "scenario")]
        file: Option<PathBuf>,
        #[command(flatten)]
        scenario: ScenarioArgs,
    },
    /// Print a shell script that builds the cluster's network for real, in network namespaces.
    Materialize {
        /// The scenario file (same as -f).
        #[arg(value_name = "SCENARIO", conflicts_with = "scenario")]
        file: Option<PathBuf>,
        #[command(flatten)]
        scenario: ScenarioArgs,
        /// Start of every namespace's name (lowercase letters, digits and `-`).
        #[arg(long, value_name = "NAME", default_value = crate::render::materialize::DEFAULT_PREFIX)]
        prefix: String,
        /// Print the script that removes what the build script made instead.
        #[arg(long)]
        teardown: bool,
    },
    /// Trace one packet from a pod, container, node or internet client to a Service, load balancer, Ingress, pod, node, DNS name or address, and its reply.
    Trace {
        #[command(flatten)]
        scenario: ScenarioArgs,
        /// Who sends: POD, NAMESPACE/POD, POD/CONTAINER, node/NODE, internet or external:IP.
        #[arg(long)]
        from: String,
        /// The container of --from that sends (they all share the pod's network).
        #[arg(short = 'c', long)]
        container: Option<String>,
        /// Where to: svc/NAME, lb/NAME, ingress/NAME, http://HOST/PATH, a DNS name (NAME, NAME.NAMESPACE, ...),
        /// pod/NAME, node/NODE:PORT, IP, IP:PORT or localhost:PORT. NAMESPACE/svc/NAME etc. for other namespaces.
        #[arg(long)]
        to: String,
        /// Destination port, 1 to 65535 (defaults to the Service's or pod's only port).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
        port: Option<u16>,
        #[arg(long, value_enum)]
        protocol: Option<ProtocolArg>,
        /// Namespace for names that carry none.
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
        /// Follow the branch that leads to this endpoint pod, instead of the first.
        #[arg(long, conflicts_with = "all_endpoints")]
        endpoint: Option<String>,
        /// Trace every endpoint branch in turn.
        #[arg(long)]
        all_endpoints: bool,
        /// The node a cloud load balancer (or an Ingress host without one) sends to, instead of
        /// the first healthy one by name.
        #[arg(long, value_name = "NODE")]
        via_node: Option<String>,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
        output: Format,
        /// Print the full walk: every route lookup with the routes it beat, every rule met,
        /// chains that ran out, conntrack's entries. The default is one line per hop.
        #[arg(short = 'v', long = "detail", visible_alias = "verbose")]
        detail: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtocolArg {
    Tcp,
    Udp,
    Sctp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    /// A Mermaid sequence diagram of the trace (trace only).
    Mermaid,
    /// A Graphviz graph of the trace (trace only).
    Dot,
}
