//! What the user typed: the command-line syntax, and nothing about what it means.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "k8snet",
    version,
    about = "Explains Kubernetes networking by tracing a packet through a cluster, hop by hop",
    after_help = "With no scenario file (no argument, no -f, no K8SNET_SCENARIO), the built-in demo cluster is used.

Examples:
  k8snet trace --from pod-a --to svc/web        trace a packet through the built-in demo
  k8snet explain scenarios/shop.yaml            the cluster as Linux holds it
  k8snet check scenarios/outside-in.yaml        run a scenario's pinned traces, for CI
  k8snet completions bash > ~/.local/share/bash-completion/completions/k8snet
  k8snet man | man -l -                         this manual as a man page"
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
    /// The scenario file (YAML or JSON; `-` for stdin), or Kubernetes manifests as `kubectl get
    /// -o yaml|json` prints them: files, directories (read recursively) or `-`, as many -f as
    /// needed. Defaults to $K8SNET_SCENARIO, then to the built-in demo.
    #[arg(short = 'f', long = "scenario", value_name = "SCENARIO")]
    pub scenario: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Explain a cluster: address plan, nodes' interfaces and routes, Services' kube-proxy rules.
    #[command(after_help = "Examples:
  k8snet explain                                  the built-in demo
  k8snet explain scenarios/shop.yaml
  k8snet explain -f scenarios/shop.yaml --node node-3
  k8snet explain scenarios/shop.yaml -n shop --service front
  cat scenarios/shop.yaml | k8snet explain -f -")]
    Explain {
        /// The scenario file (same as -f).
        #[arg(value_name = "SCENARIO", conflicts_with = "scenario")]
        file: Option<PathBuf>,
        #[command(flatten)]
        scenario: ScenarioArgs,
        /// Show only this node.
        #[arg(long)]
        node: Option<String>,
        /// Show only this Service (`NAME`, `NAMESPACE/NAME`, `svc/NAME`).
        #[arg(long)]
        service: Option<String>,
        /// Namespace for a --service that carries none.
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
        /// Output format. JSON and YAML follow --node and --service but never summarise.
        #[arg(short = 'o', long, value_enum, default_value_t = ReportFormat::Text)]
        output: ReportFormat,
    },
    /// Run the scenario's `traces:` and compare each verdict with its `expect`.
    ///
    /// One line per case, ✓ or ✗ with the first difference and the trace command that shows
    /// it, then a count. Exits 0 when every case matches, 1 when any differs, 2 when a case
    /// names something the scenario does not have.
    #[command(after_help = "Examples:
  k8snet check                                    the built-in demo's traces
  k8snet check scenarios/outside-in.yaml
  k8snet check scenarios/outside-in.yaml --junit report.xml
  k8snet check scenarios/outside-in.yaml -o json")]
    Check {
        /// The scenario file (same as -f).
        #[arg(value_name = "SCENARIO", conflicts_with = "scenario")]
        file: Option<PathBuf>,
        #[command(flatten)]
        scenario: ScenarioArgs,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t = ReportFormat::Text)]
        output: ReportFormat,
        /// Also write a JUnit XML report to FILE, for CI systems that show test results.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
    },
    /// Print a shell script that builds the cluster's network for real, in network namespaces.
    #[command(after_help = "Examples:
  k8snet materialize > build.sh && sudo sh build.sh
  k8snet materialize scenarios/datapath.yaml --prefix lab
  k8snet materialize --teardown | sudo sh")]
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
    ///
    /// With several --to, or --batch FILE (one query a line), every trace runs on one load of
    /// the scenario; see docs/trace.md.
    #[command(after_help = "Examples:
  k8snet trace --from pod-a --to svc/web                     the verdict, then one line per hop
  k8snet trace --from pod-a --to svc/web -v                  the full walk, rule by rule
  k8snet trace --from pod-a --to svc/web --all-endpoints     every endpoint branch
  k8snet trace --from pod-a --to svc/web --endpoint web-1    one branch
  k8snet trace --from pod-a --to pod/web-1 --port 9999       no listener: exit 1
  k8snet trace -f scenarios/outside-in.yaml --from shop/web-1 --to svc/web:http
  k8snet trace -f scenarios/outside-in.yaml --from internet --to http://shop.example.com/cart
  k8snet trace --from pod-a --to svc/web -o json
  k8snet trace --from pod-a --to svc/web -o dot | dot -Tsvg > trace.svg
  printf 'pod-a svc/web\\npod-a pod/web-1 --port 9999\\n' | k8snet trace --batch -")]
    Trace {
        #[command(flatten)]
        scenario: ScenarioArgs,
        /// Who sends: POD, NAMESPACE/POD, POD/CONTAINER, node/NODE, internet or external:IP.
        #[arg(long, required_unless_present = "batch", conflicts_with = "batch")]
        from: Option<String>,
        /// Where to: svc/NAME, lb/NAME, ingress/NAME, http://HOST/PATH, a DNS name (NAME, NAME.NAMESPACE, ...),
        /// pod/NAME, node/NODE:PORT, IP, IP:PORT or localhost:PORT. NAMESPACE/svc/NAME etc. for other namespaces.
        /// May be given more than once: one trace for each.
        #[arg(long, required_unless_present = "batch", conflicts_with = "batch")]
        to: Vec<String>,
        #[command(flatten)]
        options: QueryOptions,
        /// Namespace for names that carry none (in a batch too, for lines that give no -n).
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
        /// Read queries from FILE (`-` for stdin), one a line: `FROM TO [OPTIONS]`, with the
        /// options of this command that shape one trace. Blank lines and lines starting with #
        /// are skipped. Text output is one line per trace; -o json writes JSON Lines.
        #[arg(long, value_name = "FILE")]
        batch: Option<PathBuf>,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
        output: Format,
        /// Print the full walk: every route lookup with the routes it beat, every rule met,
        /// chains that ran out, conntrack's entries. The default is one line per hop.
        #[arg(short = 'v', long = "detail", visible_alias = "verbose")]
        detail: bool,
    },
    /// Convert Kubernetes manifests (`kubectl get -o yaml|json` output) into the scenario format.
    ///
    /// Objects keep the order the input lists them in; a comment on each value names the file
    /// and line it came from, and what the API does not say is written with the assumption
    /// that made it. Tracing the result gives the traces the manifests give.
    #[command(after_help = "Examples:
  kubectl get namespaces,nodes,pods,services,endpointslices,ingresses,ingressclasses,networkpolicies -A -o yaml > cluster.yaml
  k8snet import cluster.yaml > scenario.yaml
  k8snet import -f manifests/ > scenario.yaml")]
    Import {
        /// The manifests (same as -f).
        #[arg(value_name = "MANIFESTS", conflicts_with = "scenario")]
        file: Option<PathBuf>,
        #[command(flatten)]
        scenario: ScenarioArgs,
    },
    /// Write a generated cluster of any size in the scenario format to stdout.
    ///
    /// Kubenet and iptables kube-proxy; each node's pods are spread round-robin over the
    /// Services, so every pod is an endpoint of one Service. The same options give the same
    /// bytes, and the result always validates. The layout is in docs/generate.md.
    #[command(after_help = "Examples:
  k8snet generate --nodes 100 --pods-per-node 30 > big.yaml
  k8snet generate --nodes 10 --traces 20 | k8snet check -f -
  k8snet generate --nodes 10 --queries 50 > queries.txt")]
    Generate(GenerateArgs),
    /// Print a shell completion script for bash, zsh, fish, elvish or PowerShell.
    #[command(after_help = "Examples:
  k8snet completions bash > ~/.local/share/bash-completion/completions/k8snet
  k8snet completions zsh > ~/.zfunc/_k8snet            (with fpath+=~/.zfunc in ~/.zshrc)
  k8snet completions fish > ~/.config/fish/completions/k8snet.fish
  k8snet completions powershell >> $PROFILE")]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): the overview, or one subcommand's page.
    #[command(after_help = "Examples:
  k8snet man | man -l -
  k8snet man trace | man -l -
  k8snet man > /usr/local/share/man/man1/k8snet.1")]
    Man {
        /// The subcommand whose page to print (its page is named k8snet-SUBCOMMAND).
        subcommand: Option<String>,
    },
}

/// What shapes one trace: given on the command line, or on each line of a batch.
#[derive(Debug, Clone, Default, Args)]
pub struct QueryOptions {
    /// The container of --from that sends (they all share the pod's network).
    #[arg(short = 'c', long, conflicts_with = "batch")]
    pub container: Option<String>,
    /// Destination port: a number from 1 to 65535, or the name of a Service port or container
    /// port (`http`). Defaults to the Service's or pod's only port.
    #[arg(long, conflicts_with = "batch", value_parser = port_arg)]
    pub port: Option<PortArg>,
    /// The protocol of the packet (defaults to the port's own, else TCP).
    #[arg(long, value_enum, conflicts_with = "batch")]
    pub protocol: Option<ProtocolArg>,
    /// Follow the branch that leads to this endpoint pod, instead of the first.
    #[arg(long, conflicts_with_all = ["all_endpoints", "batch"])]
    pub endpoint: Option<String>,
    /// Trace every endpoint branch in turn.
    #[arg(long, conflicts_with = "batch")]
    pub all_endpoints: bool,
    /// The node a cloud load balancer (or an Ingress host without one) sends to, instead of
    /// the first healthy one by name.
    #[arg(long, value_name = "NODE", conflicts_with = "batch")]
    pub via_node: Option<String>,
}

/// One line of a `trace --batch` file: `FROM TO [OPTIONS]`.
#[derive(Debug, Parser)]
#[command(
    name = "query",
    no_binary_name = true,
    disable_help_flag = true,
    disable_version_flag = true
)]
pub struct BatchLine {
    pub from: String,
    pub to: String,
    #[arg(long)]
    pub container: Option<String>,
    #[arg(long, value_parser = port_arg)]
    pub port: Option<PortArg>,
    #[arg(long, value_enum)]
    pub protocol: Option<ProtocolArg>,
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    #[arg(long, conflicts_with = "all_endpoints")]
    pub endpoint: Option<String>,
    #[arg(long)]
    pub all_endpoints: bool,
    #[arg(long, value_name = "NODE")]
    pub via_node: Option<String>,
}

/// A port as `--port` takes it: a number, or a port's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortArg {
    Number(u16),
    Name(String),
}

/// A number from 1 to 65535, or a name as Kubernetes allows for ports (IANA_SVC_NAME: at most
/// 15 lowercase letters, digits and `-`, with a letter).
fn port_arg(text: &str) -> Result<PortArg, String> {
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return crate::resolve::parse_port(text).map(PortArg::Number);
    }
    let ok = text.len() <= 15
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && text.bytes().any(|b| b.is_ascii_lowercase())
        && !text.starts_with('-')
        && !text.ends_with('-');
    if ok {
        Ok(PortArg::Name(text.to_owned()))
    } else {
        Err("write a number from 1 to 65535, or a port's name (at most 15 lowercase letters, digits and -)".into())
    }
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: u32,
    /// Pods on each node (at most 253: a node's /24).
    #[arg(long, default_value_t = 30)]
    pub pods_per_node: u32,
    /// Services for each node; the cluster has nodes × this many.
    #[arg(long, default_value_t = 2)]
    pub services_per_node: u32,
    /// Picks the trace cases (--traces) and queries (--queries); the cluster itself does not
    /// depend on it.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The scenario format written as YAML, or as JSON with the same field names; or the cluster
    /// as kubectl prints it (`kubectl-json`: a v1 List of Nodes, Pods, Services and EndpointSlices).
    #[arg(long, value_enum, default_value_t = GenerateFormat::Yaml)]
    pub format: GenerateFormat,
    /// The cluster's CNI model (`kubenet` is the old name of `bridge`).
    #[arg(long, value_enum, default_value_t = CniArg::Bridge)]
    pub cni: CniArg,
    /// The kube-proxy mode.
    #[arg(long, value_enum, default_value_t = KubeProxyArg::Iptables)]
    pub kube_proxy: KubeProxyArg,
    /// The cluster's hairpinMode.
    #[arg(long, value_enum, default_value_t = HairpinArg::HairpinVeth)]
    pub hairpin_mode: HairpinArg,
    /// The cluster's bridgeNfCallIptables.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub bridge_nf_call_iptables: bool,
    /// Make the first K Services NodePort (nodePort 30000 + the Service's number from 0).
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub node_ports: u32,
    /// Make the K Services after those LoadBalancer, each with a loadBalancerIP from 198.18.0.0/15.
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub load_balancers: u32,
    /// externalTrafficPolicy of the NodePort and LoadBalancer Services.
    #[arg(long, value_enum, default_value_t = PolicyArg::Cluster)]
    pub external_traffic_policy: PolicyArg,
    /// internalTrafficPolicy of every Service.
    #[arg(long, value_enum, default_value_t = PolicyArg::Cluster)]
    pub internal_traffic_policy: PolicyArg,
    /// sessionAffinity of every Service.
    #[arg(long, value_enum, default_value_t = AffinityArg::None)]
    pub session_affinity: AffinityArg,
    /// Add N `traces:` (pod to Service, or pod to pod, across nodes), each expecting
    /// `delivered`, for `k8snet check`.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub traces: u32,
    /// Print N `trace --batch` queries for this cluster instead of the scenario (the same cases
    /// --traces N writes).
    #[arg(long, value_name = "N")]
    pub queries: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GenerateFormat {
    Yaml,
    Json,
    /// The cluster as `kubectl get nodes,pods,services,endpointslices -A -o json` prints it.
    KubectlJson,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CniArg {
    Bridge,
    Kubenet,
    FlannelHostGw,
    FlannelVxlan,
    Calico,
    Cilium,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KubeProxyArg {
    Iptables,
    Nftables,
    // IPVS mode: modelled only, `materialize` refuses it.
    Ipvs,
    // No kube-proxy: with `--cni cilium`, its kube-proxy replacement.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HairpinArg {
    HairpinVeth,
    PromiscuousBridge,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyArg {
    #[value(name = "Cluster")]
    Cluster,
    #[value(name = "Local")]
    Local,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AffinityArg {
    #[value(name = "None")]
    None,
    #[value(name = "ClientIP")]
    ClientIp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtocolArg {
    Tcp,
    Udp,
    Sctp,
    /// An echo request and its reply, as `ping` sends them; takes no port.
    Icmp,
}

/// The formats of a report that is not a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
    /// The same document as JSON, written as YAML.
    Yaml,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    /// The same document as JSON, written as YAML.
    Yaml,
    /// A Mermaid sequence diagram of the trace (trace only).
    Mermaid,
    /// A Graphviz graph of the trace (trace only).
    Dot,
}
