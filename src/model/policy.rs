//! NetworkPolicies as the API defines them, and who enforces them.
//!
//! The semantics here are the API's, written once so that the compiler, the tracer's policy
//! step and `explain` read them the same way: a pod is isolated for a direction only when some
//! policy selecting it has that policy type; a connection is allowed when any rule of any such
//! policy allows it; within one `from`/`to` item the selectors are AND-ed, across items OR-ed;
//! ingress is judged at the destination pod (after Service DNAT), egress at the sender; a named
//! port resolves on the pod that owns it; hostNetwork pods are never selected.

use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Serialize;

use super::{Cluster, Cni, Protocol, TargetPort};

/// Who turns NetworkPolicies into packet filtering on the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Enforcer {
    Calico,
    KubeRouter,
    Cilium,
    None,
}

impl Enforcer {
    /// What a cluster enforces when the scenario does not say: what its CNI does. The bridge
    /// plugin (kubenet) and plain flannel program no policy at all; Calico and Cilium enforce
    /// policies themselves.
    pub fn default_for(cni: Cni) -> Enforcer {
        match cni {
            Cni::Bridge | Cni::FlannelHostGw | Cni::FlannelVxlan => Enforcer::None,
            Cni::Calico => Enforcer::Calico,
            Cni::Cilium => Enforcer::Cilium,
        }
    }

    pub fn from_word(word: &str) -> Option<Enforcer> {
        match word {
            "calico" => Some(Enforcer::Calico),
            "kube-router" => Some(Enforcer::KubeRouter),
            "cilium" => Some(Enforcer::Cilium),
            "none" => Some(Enforcer::None),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Enforcer::Calico => "calico",
            Enforcer::KubeRouter => "kube-router",
            Enforcer::Cilium => "cilium",
            Enforcer::None => "none",
        }
    }
}

impl fmt::Display for Enforcer {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A namespace and its labels, `kubernetes.io/metadata.name` among them.
#[derive(Debug, Clone)]
pub struct Namespace {
    pub name: String,
    pub labels: Vec<(String, String)>,
}

/// The label the API server puts on every namespace.
pub const NAME_LABEL: &str = "kubernetes.io/metadata.name";

#[derive(Debug, Clone)]
pub struct NetworkPolicy {
    pub namespace: String,
    pub name: String,
    pub pod_selector: Selector,
    /// `Some` when the policy has the Ingress type: the rules that allow, none meaning nothing.
    pub ingress: Option<Vec<PolicyRule>>,
    pub egress: Option<Vec<PolicyRule>>,
    pub line: u64,
}

impl NetworkPolicy {
    pub fn qualified_name(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    pub fn rules(&self, direction: Direction) -> Option<&[PolicyRule]> {
        match direction {
            Direction::Ingress => self.ingress.as_deref(),
            Direction::Egress => self.egress.as_deref(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct PolicyRule {
    /// `None`: the rule names no peers, so it allows every peer.
    pub peers: Option<Vec<Peer>>,
    /// Empty: every port.
    pub ports: Vec<PolicyPort>,
    pub line: u64,
}

impl PolicyRule {
    /// What the rule admits, in words: its peers (OR-ed) on its ports.
    pub fn describe(&self) -> String {
        let peers = match &self.peers {
            None => "every peer".to_owned(),
            Some(ps) => ps.iter().map(|p| p.describe()).collect::<Vec<_>>().join(" OR "),
        };
        let ports = if self.ports.is_empty() {
            "every port".to_owned()
        } else {
            self.ports
                .iter()
                .map(|p| match (&p.port, p.end_port) {
                    (None, _) => format!("every {} port", p.protocol),
                    (Some(port), Some(end)) => format!("{port}-{end}/{}", p.protocol),
                    (Some(port), None) => format!("{port}/{}", p.protocol),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!("{peers} on {ports}")
    }
}

/// One item of `from` or `to`: its selectors hold together (AND).
#[derive(Debug, Clone)]
pub struct Peer {
    pub pods: Option<Selector>,
    pub namespaces: Option<Selector>,
    pub ip_block: Option<IpBlock>,
}

#[derive(Debug, Clone)]
pub struct IpBlock {
    pub cidr: Ipv4Net,
    pub except: Vec<Ipv4Net>,
}

impl IpBlock {
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.cidr.contains(&ip) && !self.except.iter().any(|e| e.contains(&ip))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyPort {
    pub protocol: Protocol,
    /// `None`: every port of the protocol.
    pub port: Option<TargetPort>,
    pub end_port: Option<u16>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    pub labels: Vec<(String, String)>,
    pub expressions: Vec<Expression>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expression {
    pub key: String,
    pub operator: Operator,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl Selector {
    /// An empty selector selects everything, as the API says.
    pub fn matches(&self, labels: &[(String, String)]) -> bool {
        let value = |key: &str| labels.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        self.labels.iter().all(|term| labels.contains(term))
            && self.expressions.iter().all(|e| match e.operator {
                Operator::In => value(&e.key).is_some_and(|v| e.values.contains(v)),
                Operator::NotIn => value(&e.key).is_none_or(|v| !e.values.contains(v)),
                Operator::Exists => value(&e.key).is_some(),
                Operator::DoesNotExist => value(&e.key).is_none(),
            })
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.expressions.is_empty()
    }
}

impl fmt::Display for Selector {
    /// The selector in `kubectl`'s selector syntax: `app=web,tier in (a,b)`; `{}` when empty.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("{}");
        }
        let mut terms: Vec<String> = self.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for e in &self.expressions {
            terms.push(match e.operator {
                Operator::In => format!("{} in ({})", e.key, e.values.join(",")),
                Operator::NotIn => format!("{} notin ({})", e.key, e.values.join(",")),
                Operator::Exists => e.key.clone(),
                Operator::DoesNotExist => format!("!{}", e.key),
            });
        }
        f.write_str(&terms.join(","))
    }
}

impl Peer {
    /// The item as the user wrote it, in words: which selectors hold together.
    pub fn describe(&self) -> String {
        match (&self.namespaces, &self.pods, &self.ip_block) {
            (_, _, Some(b)) if b.except.is_empty() => format!("ipBlock {}", b.cidr),
            (_, _, Some(b)) => format!(
                "ipBlock {} except {}",
                b.cidr,
                b.except.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", ")
            ),
            (Some(ns), Some(pods), None) => {
                format!("pods matching {pods} AND in namespaces matching {ns} (one item)")
            }
            (Some(ns), None, None) => format!("every pod in namespaces matching {ns}"),
            (None, Some(pods), None) => format!("pods matching {pods} in the policy's namespace"),
            (None, None, None) => "nothing".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

/// The rule that allowed a connection: the policy (index into `Cluster::policies`), the
/// direction and the rule's index in that direction's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleRef {
    pub policy: usize,
    pub direction: Direction,
    pub rule: usize,
}

/// The API's answer for one direction of one connection at one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The policies that select the pod and have this direction's type.
    pub selecting: Vec<usize>,
    pub allowed_by: Option<RuleRef>,
}

impl Decision {
    pub fn isolated(&self) -> bool {
        !self.selecting.is_empty()
    }

    pub fn allowed(&self) -> bool {
        !self.isolated() || self.allowed_by.is_some()
    }
}

/// The other end of a connection, as a policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct Remote {
    pub ip: Ipv4Addr,
    /// The pod that holds `ip` as its own address, if one does.
    pub pod: Option<usize>,
}

impl Cluster {
    /// A namespace's labels; every namespace a pod or policy uses exists.
    pub fn namespace_labels(&self, name: &str) -> &[(String, String)] {
        self.namespaces
            .binary_search_by(|n| n.name.as_str().cmp(name))
            .map(|i| self.namespaces[i].labels.as_slice())
            .unwrap_or(&[])
    }

    /// The policies that select pod `pod`, in list order (hostNetwork pods none).
    pub fn policies_selecting(&self, pod: usize) -> Vec<usize> {
        let p = &self.pods[pod];
        if p.host_network {
            return Vec::new();
        }
        self.policies
            .iter()
            .enumerate()
            .filter(|(_, np)| np.namespace == p.namespace && np.pod_selector.matches(&p.labels))
            .map(|(i, _)| i)
            .collect()
    }

    /// The names (`namespace/name`) of the policies that select `pod` with rules for direction
    /// `d`, in list order.
    pub fn policy_names_selecting(&self, pod: usize, d: Direction) -> Vec<String> {
        self.policies_selecting(pod)
            .into_iter()
            .filter(|&pi| self.policies[pi].rules(d).is_some())
            .map(|pi| self.policies[pi].qualified_name())
            .collect()
    }

    /// Whether `pod` may take (ingress) or open (egress) a connection with `remote` on
    /// `port`/`protocol`, the port being the destination's (for ingress, `pod`'s own).
    pub fn decide(&self, direction: Direction, pod: usize, remote: Remote, protocol: Protocol, port: u16) -> Decision {
        let selecting: Vec<usize> = self
            .policies_selecting(pod)
            .into_iter()
            .filter(|&i| self.policies[i].rules(direction).is_some())
            .collect();
        let destination = match direction {
            Direction::Ingress => Some(pod),
            Direction::Egress => remote.pod,
        };
        let allowed_by = selecting.iter().find_map(|&pi| {
            let np = &self.policies[pi];
            let rules = np.rules(direction).unwrap_or_default();
            rules
                .iter()
                .position(|r| self.rule_allows(np, r, remote, destination, protocol, port))
                .map(|rule| RuleRef {
                    policy: pi,
                    direction,
                    rule,
                })
        });
        Decision { selecting, allowed_by }
    }

    fn rule_allows(
        &self,
        np: &NetworkPolicy,
        rule: &PolicyRule,
        remote: Remote,
        destination: Option<usize>,
        protocol: Protocol,
        port: u16,
    ) -> bool {
        let peer_ok = match &rule.peers {
            None => true,
            Some(peers) => peers.iter().any(|peer| self.peer_matches(np, peer, remote)),
        };
        peer_ok
            && (rule.ports.is_empty()
                || rule
                    .ports
                    .iter()
                    .any(|p| self.port_matches(p, destination, protocol, port)))
    }

    pub fn peer_matches(&self, np: &NetworkPolicy, peer: &Peer, remote: Remote) -> bool {
        if let Some(block) = &peer.ip_block {
            return block.contains(remote.ip);
        }
        // Selectors pick pods, never a hostNetwork pod (whose address is its node's).
        let Some(pod) = remote.pod.map(|i| &self.pods[i]).filter(|p| !p.host_network) else {
            return false;
        };
        let namespace_ok = match &peer.namespaces {
            Some(ns) => ns.matches(self.namespace_labels(&pod.namespace)),
            None => pod.namespace == np.namespace,
        };
        namespace_ok && peer.pods.as_ref().is_none_or(|s| s.matches(&pod.labels))
    }

    fn port_matches(&self, p: &PolicyPort, destination: Option<usize>, protocol: Protocol, port: u16) -> bool {
        if p.protocol != protocol {
            return false;
        }
        match &p.port {
            None => true,
            Some(TargetPort::Number(n)) => (*n..=p.end_port.unwrap_or(*n)).contains(&port),
            Some(TargetPort::Name(name)) => destination.is_some_and(|d| {
                self.pods[d]
                    .listeners()
                    .any(|(_, cp)| cp.name.as_deref() == Some(name) && cp.protocol == protocol && cp.port == port)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn expr(key: &str, operator: Operator, values: &[&str]) -> Expression {
        Expression {
            key: key.to_owned(),
            operator,
            values: values.iter().map(|v| (*v).to_owned()).collect(),
        }
    }

    #[test]
    fn selectors_follow_the_api_for_every_operator() {
        let web = labels(&[("app", "web"), ("tier", "front")]);
        let bare = labels(&[]);
        let with = |e: Expression| Selector {
            labels: Vec::new(),
            expressions: vec![e],
        };
        assert!(
            Selector::default().matches(&bare),
            "the empty selector selects everything"
        );
        assert!(with(expr("app", Operator::In, &["web", "db"])).matches(&web));
        assert!(!with(expr("app", Operator::In, &["db"])).matches(&web));
        assert!(!with(expr("app", Operator::In, &["web"])).matches(&bare));
        assert!(with(expr("app", Operator::NotIn, &["db"])).matches(&web));
        assert!(
            with(expr("app", Operator::NotIn, &["db"])).matches(&bare),
            "NotIn holds without the key"
        );
        assert!(!with(expr("app", Operator::NotIn, &["web"])).matches(&web));
        assert!(with(expr("tier", Operator::Exists, &[])).matches(&web));
        assert!(!with(expr("tier", Operator::Exists, &[])).matches(&bare));
        assert!(with(expr("tier", Operator::DoesNotExist, &[])).matches(&bare));
        assert!(!with(expr("tier", Operator::DoesNotExist, &[])).matches(&web));
        let both = Selector {
            labels: labels(&[("app", "web")]),
            expressions: vec![expr("tier", Operator::In, &["back"])],
        };
        assert!(!both.matches(&web), "matchLabels and matchExpressions must all hold");
        assert_eq!(both.to_string(), "app=web,tier in (back)");
    }

    #[test]
    fn except_cuts_holes_in_an_ip_block() {
        let block = IpBlock {
            cidr: "10.0.0.0/14".parse().unwrap(),
            except: vec!["10.0.2.0/24".parse().unwrap()],
        };
        assert!(block.contains("10.0.1.5".parse().unwrap()));
        assert!(!block.contains("10.0.2.5".parse().unwrap()));
        assert!(!block.contains("10.4.0.1".parse().unwrap()));
    }

    #[test]
    fn one_item_with_two_selectors_reads_as_and() {
        let peer = Peer {
            pods: Some(Selector {
                labels: labels(&[("app", "client")]),
                expressions: Vec::new(),
            }),
            namespaces: Some(Selector {
                labels: labels(&[("team", "dev")]),
                expressions: Vec::new(),
            }),
            ip_block: None,
        };
        assert!(peer.describe().contains("AND"), "{}", peer.describe());
    }
}
