//! kube-router's network policy controller in iptables mode (release v2.11.0,
//! `pkg/controllers/netpol/{npc_iptables,pod,policy}.go`): the `filter` chains and IP sets it
//! writes on every node.
//!
//! - `INPUT`, `FORWARD` and `OUTPUT` jump first to `KUBE-ROUTER-INPUT`/`-FORWARD`/`-OUTPUT`.
//! - Those send traffic to or from each pod on the node to the pod's `KUBE-POD-FW-` chain (on
//!   `FORWARD` twice: routed, and bridged with `-m physdev --physdev-is-bridged`), then to
//!   `KUBE-NWPLCY-TAIL`, which accepts what carries the "netpol-ok" mark 0x20000.
//! - A pod's chain accepts established traffic (`KUBE-NWPLCY-COMMON`), and traffic from its
//!   own node; then, for each direction, jumps to the chain of every policy that selects it,
//!   or to `KUBE-NWPLCY-DEFAULT`, which marks everything 0x10000 (allowed). A policy chain
//!   marks what one of its rules allows. What is still unmarked is REJECTed.
//!
//! The policy chains and sets are the same on every node and made once; a node's own chains
//! (the three `KUBE-ROUTER-` chains and the chains of its pods) are made when first read.

pub mod policy;

use std::sync::Arc;

use data_encoding::BASE32;
use sha2::{Digest, Sha256};

use crate::compile::kube_proxy::KubeProxy;
use crate::model::Cluster;
use crate::model::policy::Direction;
use crate::net::Protocol;
use crate::net::ipset::IpSets;
use crate::net::iptables::{Chain, CtState, MakeChains, Match, Rule, Table, Target, host};

pub const INPUT: &str = "KUBE-ROUTER-INPUT";
pub const FORWARD: &str = "KUBE-ROUTER-FORWARD";
pub const OUTPUT: &str = "KUBE-ROUTER-OUTPUT";
pub const DEFAULT: &str = "KUBE-NWPLCY-DEFAULT";
pub const COMMON: &str = "KUBE-NWPLCY-COMMON";
pub const TAIL: &str = "KUBE-NWPLCY-TAIL";
pub const POD_CHAIN_PREFIX: &str = "KUBE-POD-FW-";
pub const POLICY_CHAIN_PREFIX: &str = "KUBE-NWPLCY-";

/// The mark a policy rule (or the default chain) sets on what it allows.
pub const ALLOWED_MARK: u32 = 0x10000;
/// The mark a pod's chain sets on what passed it, which the top chains then accept.
pub const NETPOL_OK_MARK: u32 = 0x20000;

/// What a pod's chain REJECTs carries this comment's tail: the verdict of a denial.
pub const REJECT_TAG: &str = " reject";

/// The verdict a rule of a pod's firewall chain gives the packet it stops.
pub fn verdict_for_rule(rule: &str) -> Option<crate::trace::Verdict> {
    rule.starts_with(&format!("-A {POD_CHAIN_PREFIX}"))
        .then_some(crate::trace::Verdict::DeniedByPolicy)
}

fn hash16(text: &str) -> String {
    BASE32.encode(&Sha256::digest(text.as_bytes()))[..16].to_owned()
}

fn comment(text: impl Into<String>) -> Match {
    Match::Comment(text.into())
}

fn mark(value: u32, negated: bool) -> Match {
    Match::Mark {
        value,
        mask: value,
        negated,
    }
}

/// A policy rule as kube-router writes it: mark what matches, then return if marked.
fn mark_rule_pair(matches: Vec<Match>) -> [Rule; 2] {
    let mut returning = matches.clone();
    returning.push(mark(ALLOWED_MARK, false));
    [
        Rule::new(
            matches,
            Target::SetXMark {
                value: ALLOWED_MARK,
                mask: ALLOWED_MARK,
            },
        ),
        Rule::new(returning, Target::Return),
    ]
}

pub fn pod_chain(namespace: &str, pod: &str) -> String {
    format!(
        "{POD_CHAIN_PREFIX}{}",
        hash16(&format!("{namespace}{pod}{}", policy::SYNC_VERSION))
    )
}

/// A positioned top-level rule's comment carries a hash of its chain and words, which
/// kube-router uses to find the rule again (`ensureTopLevelChains`).
fn with_uuid(chain: &str, words: &[&str], text: &str) -> String {
    format!("{text} - {}", hash16(&format!("{chain}{}", words.concat())))
}

/// kube-router's rules for a whole cluster, over kube-proxy's.
pub struct KubeRouter {
    shared: Arc<Table>,
    sets: Arc<IpSets>,
    nodes: Arc<NodePods>,
}

/// What the nodes' own chains are made from: per node, its pods with the policies that select
/// each, found once for the cluster; a node's chains are made from them when first read.
struct NodePods {
    service_network: ipnet::Ipv4Net,
    pods: Vec<Vec<PodFirewall>>,
}

struct PodFirewall {
    namespace: String,
    name: String,
    ip: std::net::Ipv4Addr,
    /// The selecting policies in list order: `namespace/name`, chain, Ingress type, Egress type.
    policies: Vec<(String, String, bool, bool)>,
}

impl NodePods {
    fn of(c: &Cluster) -> NodePods {
        let pods = (0..c.nodes.len())
            .map(|node| {
                c.pods_on(node)
                    .filter(|(_, p)| !p.host_network)
                    .map(|(pi, p)| PodFirewall {
                        namespace: p.namespace.clone(),
                        name: p.name.clone(),
                        ip: p.ip,
                        policies: c
                            .policies_selecting(pi)
                            .into_iter()
                            .map(|i| {
                                let np = &c.policies[i];
                                (
                                    np.qualified_name(),
                                    policy::policy_chain(np),
                                    np.ingress.is_some(),
                                    np.egress.is_some(),
                                )
                            })
                            .collect(),
                    })
                    .collect()
            })
            .collect();
        NodePods {
            service_network: c.service_network,
            pods,
        }
    }
}

impl KubeRouter {
    /// kube-router's rules beside kube-proxy's iptables `filter` rules, or alone where
    /// kube-proxy writes none (its nftables mode).
    pub fn new(cluster: &Cluster, kube_proxy: Option<&KubeProxy>) -> KubeRouter {
        let mut shared = Table::new("filter", &["INPUT", "FORWARD", "OUTPUT"]);
        for chain in kube_proxy.iter().flat_map(|k| k.shared_filter().chains()) {
            shared.ensure(&chain.name).rules = chain.rules.clone();
        }
        for (builtin, own) in [("INPUT", INPUT), ("FORWARD", FORWARD), ("OUTPUT", OUTPUT)] {
            let words = ["-m", "comment", "--comment", "kube-router netpol", "-j", own];
            let rule = Rule::new(
                vec![comment(with_uuid(builtin, &words, "kube-router netpol"))],
                Target::Jump(own.to_owned()),
            );
            shared.ensure(builtin).rules.insert(0, rule);
        }
        let mut sets = IpSets::default();
        for chain in common_chains() {
            shared.ensure(&chain.name).rules = chain.rules;
        }
        for np in &cluster.policies {
            let chain = policy::policy_chain_and_sets(cluster, np, &mut sets);
            shared.ensure(&chain.name).rules = chain.rules;
        }
        KubeRouter {
            shared: Arc::new(shared),
            sets: Arc::new(sets),
            nodes: Arc::new(NodePods::of(cluster)),
        }
    }

    pub fn ipsets(&self) -> Arc<IpSets> {
        Arc::clone(&self.sets)
    }

    /// `node`'s filter table: kube-proxy's and kube-router's shared chains, with both's own
    /// chains for the node made on first read.
    pub fn filter(&self, node: usize, kube_proxy_own: Option<MakeChains>) -> Table {
        let nodes = Arc::clone(&self.nodes);
        Table::layered(
            Arc::clone(&self.shared),
            Arc::new(move || {
                let mut chains = kube_proxy_own.as_ref().map(|own| own()).unwrap_or_default();
                chains.extend(node_chains(&nodes, node));
                chains
            }),
        )
    }
}

/// `KUBE-NWPLCY-DEFAULT`, `-COMMON` and `-TAIL`, the same on every node.
fn common_chains() -> Vec<Chain> {
    let user = |name: &str, rules: Vec<Rule>| Chain {
        name: name.to_owned(),
        policy: None,
        rules,
    };
    let icmp = |t: u8, text: &str| {
        Rule::new(
            vec![Match::Protocol(Protocol::Icmp), comment(text), Match::IcmpType(t)],
            Target::Accept,
        )
    };
    vec![
        user(
            DEFAULT,
            vec![Rule::new(
                vec![comment("rule to mark traffic matching a network policy")],
                Target::SetXMark {
                    value: ALLOWED_MARK,
                    mask: ALLOWED_MARK,
                },
            )],
        ),
        user(
            COMMON,
            vec![
                Rule::new(
                    vec![
                        comment("rule to drop invalid state for pod"),
                        Match::Conntrack {
                            states: vec![CtState::Invalid],
                            negated: false,
                        },
                    ],
                    Target::Drop,
                ),
                Rule::new(
                    vec![
                        comment("rule for stateful firewall for pod"),
                        Match::Conntrack {
                            states: vec![CtState::Related, CtState::Established],
                            negated: false,
                        },
                    ],
                    Target::Accept,
                ),
                icmp(8, "allow icmp echo requests"),
                icmp(3, "allow icmp destination unreachable messages"),
                icmp(11, "allow icmp time exceeded messages"),
            ],
        ),
        user(
            TAIL,
            vec![Rule::new(
                vec![comment("accept netpol-ok"), mark(NETPOL_OK_MARK, false)],
                Target::Accept,
            )],
        ),
    ]
}

/// The node's `KUBE-ROUTER-` chains and one `KUBE-POD-FW-` chain per pod on it.
fn node_chains(nodes: &NodePods, node: usize) -> Vec<Chain> {
    let mut input = top_input(nodes.service_network);
    let mut forward = Vec::new();
    let mut output = Vec::new();
    let mut pods = Vec::new();
    for pod in nodes.pods.get(node).into_iter().flatten() {
        let chain = pod_chain(&pod.namespace, &pod.name);
        let jump = || Target::Jump(chain.clone());
        let inbound = format!("{}/{} in", pod.namespace, pod.name);
        let outbound = format!("{}/{} out", pod.namespace, pod.name);
        let to = |net| Match::Destination { net, negated: false };
        let from = |net| Match::Source { net, negated: false };
        let ip = host(pod.ip);
        forward.push(Rule::new(vec![to(ip), comment(&inbound)], jump()));
        output.push(Rule::new(vec![to(ip), comment(&inbound)], jump()));
        forward.push(Rule::new(
            vec![to(ip), Match::PhysdevIsBridged, comment(&inbound)],
            jump(),
        ));
        for top in [&mut input, &mut forward, &mut output] {
            top.push(Rule::new(vec![from(ip), comment(&outbound)], jump()));
        }
        forward.push(Rule::new(
            vec![from(ip), Match::PhysdevIsBridged, comment(&outbound)],
            jump(),
        ));
        pods.push(pod_firewall(pod, chain));
    }
    let mut chains = Vec::new();
    for (name, mut rules) in [(INPUT, input), (FORWARD, forward), (OUTPUT, output)] {
        rules.push(Rule::new(
            vec![comment(
                "rule to explicitly handle traffic for network policies ACCEPT/REJECT decision",
            )],
            Target::Jump(TAIL.to_owned()),
        ));
        rules.push(Rule::new(
            vec![
                comment("rule to explicitly ACCEPT traffic that comply to network policies"),
                mark(NETPOL_OK_MARK, false),
            ],
            Target::Accept,
        ));
        chains.push(Chain {
            name: name.to_owned(),
            policy: None,
            rules,
        });
    }
    chains.extend(pods);
    chains
}

/// `KUBE-ROUTER-INPUT`'s first rules: traffic to ClusterIPs and to NodePorts is left to
/// kube-proxy.
fn top_input(service_network: ipnet::Ipv4Net) -> Vec<Rule> {
    let cidr = service_network.to_string();
    let words = [
        "-m",
        "comment",
        "--comment",
        "allow traffic to primary/secondary cluster IP range",
        "-d",
        cidr.as_str(),
        "-j",
        "RETURN",
    ];
    let mut rules = vec![Rule::new(
        vec![
            Match::Destination {
                net: service_network,
                negated: false,
            },
            comment(with_uuid(
                INPUT,
                &words,
                "allow traffic to primary/secondary cluster IP range",
            )),
        ],
        Target::Return,
    )];
    for protocol in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp] {
        let text = format!("allow LOCAL {protocol} traffic to node ports");
        let words = [
            "-p",
            protocol.lower(),
            "-m",
            "comment",
            "--comment",
            text.as_str(),
            "-m",
            "addrtype",
            "--dst-type",
            "LOCAL",
            "-m",
            "multiport",
            "--dports",
            "30000:32767",
            "-j",
            "RETURN",
        ];
        rules.push(Rule::new(
            vec![
                Match::Protocol(protocol),
                comment(with_uuid(INPUT, &words, &text)),
                Match::AddrTypeLocal {
                    destination: true,
                    negated: false,
                },
                Match::Multiport {
                    first: 30000,
                    last: 32767,
                },
            ],
            Target::Return,
        ));
    }
    rules
}

/// One pod's firewall chain, in the order kube-router's inserts at the top leave it.
fn pod_firewall(p: &PodFirewall, name: String) -> Chain {
    let ip = host(p.ip);
    let to = Match::Destination {
        net: ip,
        negated: false,
    };
    let from = Match::Source {
        net: ip,
        negated: false,
    };
    let has = |d: Direction| {
        p.policies.iter().any(|(_, _, ingress, egress)| match d {
            Direction::Ingress => *ingress,
            Direction::Egress => *egress,
        })
    };
    let mut rules = vec![
        Rule::new(vec![comment("common netpol rules")], Target::Jump(COMMON.to_owned())),
        Rule::new(
            vec![
                to.clone(),
                comment("from local node"),
                Match::AddrTypeLocal {
                    destination: false,
                    negated: false,
                },
            ],
            Target::Accept,
        ),
    ];
    if !has(Direction::Egress) {
        rules.push(Rule::new(
            vec![from.clone(), comment("default egress")],
            Target::Jump(DEFAULT.to_owned()),
        ));
    }
    if !has(Direction::Ingress) {
        rules.push(Rule::new(
            vec![to.clone(), comment("default ingress")],
            Target::Jump(DEFAULT.to_owned()),
        ));
    }
    // Each policy's jump was inserted at the top in turn: the last policy comes first.
    for (qualified, chain, ingress, egress) in p.policies.iter().rev() {
        let mut m = Vec::new();
        match (ingress, egress) {
            (true, false) => m.push(to.clone()),
            (false, true) => m.push(from.clone()),
            _ => {}
        }
        m.push(comment(format!("{qualified} policy")));
        rules.push(Rule::new(m, Target::Jump(chain.clone())));
    }
    let unmarked = || mark(ALLOWED_MARK, true);
    rules.push(Rule::new(
        vec![
            comment(format!("{}/{} log-drop", p.namespace, p.name)),
            unmarked(),
            Match::Limit {
                per_minute: 10,
                burst: 10,
            },
        ],
        Target::Nflog { group: 100 },
    ));
    rules.push(Rule::new(
        vec![comment(format!("{}/{}{REJECT_TAG}", p.namespace, p.name)), unmarked()],
        Target::Reject,
    ));
    rules.push(Rule::new(
        Vec::new(),
        Target::SetXMark {
            value: 0,
            mask: ALLOWED_MARK,
        },
    ));
    rules.push(Rule::new(
        vec![comment("set netpol-ok mark")],
        Target::SetXMark {
            value: NETPOL_OK_MARK,
            mask: NETPOL_OK_MARK,
        },
    ));
    Chain {
        name,
        policy: None,
        rules,
    }
}
