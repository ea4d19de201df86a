//! A traced packet's journey as plain data: hops, the steps taken at each, and the verdict.
//!
//! The simulator produces it; renderers turn it into text or JSON. Its serde form is the JSON
//! schema documented in `docs/json.md`, so field order and names here are a public contract.

use std::fmt;
use std::net::SocketAddrV4;

use serde::Serialize;

use crate::net::Protocol;
use crate::net::route::Rejected;

/// How a trace ends. A closed set: each has a one-line meaning and a hint at the fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Delivered,
    LeftCluster,
    NoRoute,
    Blackhole,
    Unreachable,
    Prohibited,
    NoNeighbor,
    NoEndpoints,
    NoListener,
    DroppedByBridge,
    Filtered,
    Rejected,
    ReplyLost,
    Loop,
    NoLocalEndpoints,
    NoLocalEndpointsInternal,
    Nxdomain,
    DnsUnreachable,
    NotFound,
    DeniedByPolicy,
}

impl Verdict {
    pub const ALL: &'static [Verdict] = &[
        Verdict::Delivered,
        Verdict::LeftCluster,
        Verdict::NoRoute,
        Verdict::Blackhole,
        Verdict::Unreachable,
        Verdict::Prohibited,
        Verdict::NoNeighbor,
        Verdict::NoEndpoints,
        Verdict::NoListener,
        Verdict::DroppedByBridge,
        Verdict::Filtered,
        Verdict::Rejected,
        Verdict::ReplyLost,
        Verdict::Loop,
        Verdict::NoLocalEndpoints,
        Verdict::NoLocalEndpointsInternal,
        Verdict::Nxdomain,
        Verdict::DnsUnreachable,
        Verdict::NotFound,
        Verdict::DeniedByPolicy,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Verdict::Delivered => "delivered",
            Verdict::LeftCluster => "left_cluster",
            Verdict::NoRoute => "no_route",
            Verdict::Blackhole => "blackhole",
            Verdict::Unreachable => "unreachable",
            Verdict::Prohibited => "prohibited",
            Verdict::NoNeighbor => "no_neighbor",
            Verdict::NoEndpoints => "no_endpoints",
            Verdict::NoListener => "no_listener",
            Verdict::DroppedByBridge => "dropped_by_bridge",
            Verdict::Filtered => "filtered",
            Verdict::Rejected => "rejected",
            Verdict::ReplyLost => "reply_lost",
            Verdict::Loop => "loop",
            Verdict::NoLocalEndpoints => "no_local_endpoints",
            Verdict::NoLocalEndpointsInternal => "no_local_endpoints_internal",
            Verdict::Nxdomain => "nxdomain",
            Verdict::DnsUnreachable => "dns_unreachable",
            Verdict::NotFound => "not_found",
            Verdict::DeniedByPolicy => "denied_by_policy",
        }
    }

    pub fn from_name(name: &str) -> Option<Verdict> {
        Verdict::ALL.iter().copied().find(|v| v.name() == name)
    }

    /// What the verdict means, in one line.
    pub fn meaning(self) -> &'static str {
        match self {
            Verdict::Delivered => "the packet reached a listening socket, and the reply came back to the client",
            Verdict::LeftCluster => "the packet left for the internet",
            Verdict::NoRoute => "no route matched the destination",
            Verdict::Blackhole => "a blackhole route dropped the packet",
            Verdict::Unreachable => "an unreachable route refused the packet",
            Verdict::Prohibited => "a prohibit route refused the packet",
            Verdict::NoNeighbor => "the next hop is not on the link: nobody answers ARP for it",
            Verdict::NoEndpoints => {
                "the Service has no endpoints (or does not exist): kube-proxy rejects connections to it, an ingress controller answers 503"
            }
            Verdict::NoListener => "the packet arrived, but nothing listens on that port",
            Verdict::DroppedByBridge => "the bridge will not send a frame back out of the port it came in on",
            Verdict::Filtered => "a netfilter rule dropped the packet",
            Verdict::Rejected => "a netfilter rule rejected the packet",
            Verdict::ReplyLost => "the request arrived, but the reply never reached the client as an answer",
            Verdict::Loop => "the packet went round in circles until its TTL ran out",
            Verdict::NoLocalEndpoints => {
                "externalTrafficPolicy is Local and this node runs no endpoint of the Service, so kube-proxy drops it"
            }
            Verdict::NoLocalEndpointsInternal => {
                "internalTrafficPolicy is Local and the sending node runs no endpoint of the Service, so kube-proxy drops traffic to its ClusterIP"
            }
            Verdict::Nxdomain => "the name resolves to nothing: the resolver answers NXDOMAIN",
            Verdict::DnsUnreachable => {
                "the cluster DNS did not answer the resolver's query, so the name does not resolve and no connection is made"
            }
            Verdict::NotFound => {
                "the ingress controller has no rule for this host and path and no default backend: it answers 404"
            }
            Verdict::DeniedByPolicy => {
                "a NetworkPolicy selects the pod and none of its rules allows this connection, so the enforcer refused it"
            }
        }
    }

    /// Where to look to fix it.
    pub fn hint(self) -> &'static str {
        match self {
            Verdict::Delivered => "nothing to fix",
            Verdict::LeftCluster => {
                "if the destination should be inside the cluster, check its address against the cluster's networks"
            }
            Verdict::NoRoute => {
                "add a route on the host that dropped it; from outside the cluster, use an address it exposes (a load balancer or a NodePort)"
            }
            Verdict::Blackhole | Verdict::Unreachable | Verdict::Prohibited => {
                "remove or narrow the route that matched, or add a more specific route for the destination"
            }
            Verdict::NoNeighbor => "point the route at an address on a directly connected network",
            Verdict::NoEndpoints => {
                "check that the Service exists and that its selector matches running pods with the target port"
            }
            Verdict::NoListener => "check the port: the Service's targetPort or the container's port is probably wrong",
            Verdict::DroppedByBridge => {
                "enable hairpin mode (kubelet --hairpin-mode=hairpin-veth) so a pod can reach itself through its Service"
            }
            Verdict::Filtered | Verdict::Rejected => "read the rule that matched: its comment says who wrote it",
            Verdict::ReplyLost => {
                "turn on net.bridge.bridge-nf-call-iptables so replies between pods on one bridge meet conntrack"
            }
            Verdict::Loop => "the extra routes on the nodes point at each other; remove one",
            Verdict::NoLocalEndpoints => {
                "send to a node that runs an endpoint (a cloud load balancer's health checks on healthCheckNodePort pick only those), or use externalTrafficPolicy Cluster (the pod then sees a node's address instead of the client's)"
            }
            Verdict::NoLocalEndpointsInternal => {
                "run an endpoint on every node that sends to the Service (a DaemonSet), or use internalTrafficPolicy Cluster"
            }
            Verdict::Nxdomain => "check the name and namespace: a Service is NAME.NAMESPACE.svc.CLUSTER-DOMAIN",
            Verdict::DnsUnreachable => {
                "check the Service kube-system/kube-dns: it must exist, select running DNS pods that listen on 53/UDP, and be reachable from the pod"
            }
            Verdict::NotFound => "add a path for this request to an Ingress rule, or give the Ingress a defaultBackend",
            Verdict::DeniedByPolicy => {
                "add a rule to a policy that selects the pod, with a peer that matches the other end and its port (the reason names what would have to match)"
            }
        }
    }

    /// Whether the trace counts as a success for the exit code.
    pub fn is_success(self) -> bool {
        matches!(self, Verdict::Delivered | Verdict::LeftCluster)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A packet's identity at one moment: protocol and both ends.
///
/// An ICMP echo has no ports: its identifier stands in both port positions, as conntrack keys
/// it, so the reply (same identifier, ends swapped) matches the request's entry. Text and JSON
/// show the identifier once instead of ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tuple {
    pub protocol: Protocol,
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
}

impl Tuple {
    pub fn reversed(self) -> Tuple {
        Tuple {
            protocol: self.protocol,
            src: self.dst,
            dst: self.src,
        }
    }
}

impl Tuple {
    /// The source as text: `10.0.1.2:40000`, or the bare address for a protocol without ports.
    pub fn src_text(&self) -> String {
        self.end_text(self.src)
    }

    /// The destination as text, as [`Tuple::src_text`].
    pub fn dst_text(&self) -> String {
        self.end_text(self.dst)
    }

    fn end_text(&self, end: SocketAddrV4) -> String {
        if self.protocol.has_ports() {
            end.to_string()
        } else {
            end.ip().to_string()
        }
    }
}

impl fmt::Display for Tuple {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.protocol.has_ports() {
            write!(f, "{} {} -> {}", self.protocol.lower(), self.src, self.dst)
        } else if self.protocol == Protocol::Ipip {
            write!(f, "ipip {} -> {}", self.src.ip(), self.dst.ip())
        } else {
            write!(
                f,
                "{} {} -> {} id={}",
                self.protocol.lower(),
                self.src.ip(),
                self.dst.ip(),
                self.src.port()
            )
        }
    }
}

impl Serialize for Tuple {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        if self.protocol.has_ports() {
            let mut t = serializer.serialize_struct("Tuple", 3)?;
            t.serialize_field("protocol", &self.protocol)?;
            t.serialize_field("src", &self.src)?;
            t.serialize_field("dst", &self.dst)?;
            t.end()
        } else {
            let mut t = serializer.serialize_struct("Tuple", 4)?;
            t.serialize_field("protocol", &self.protocol)?;
            t.serialize_field("src", self.src.ip())?;
            t.serialize_field("dst", self.dst.ip())?;
            t.serialize_field("id", &self.src.port())?;
            t.end()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trace {
    pub from: String,
    pub to: String,
    /// How the names given were resolved to addresses and ports.
    pub notes: Vec<String>,
    /// What happened before any packet was sent: the resolver's lookups.
    pub resolution: Vec<Step>,
    pub verdict: Verdict,
    /// Why this particular packet got its verdict, in words about this packet.
    pub reason: String,
    pub delivered_to: Option<DeliveredTo>,
    pub hops: Vec<Hop>,
    pub reply: Option<Reply>,
    /// Where to look to fix this trace, when the question says more than the verdict does (a
    /// Service port that does not exist); shown instead of the verdict's hint.
    #[serde(skip)]
    pub hint: Option<String>,
}

impl Trace {
    pub fn hint(&self) -> &str {
        self.hint.as_deref().unwrap_or(self.verdict.hint())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveredTo {
    pub pod: Option<String>,
    pub namespace: Option<String>,
    pub ip: std::net::Ipv4Addr,
    /// `None` for an ICMP echo, which the kernel answers without a socket.
    pub port: Option<u16>,
    /// The socket's owner ("container server of pod default/web-1").
    pub listener: String,
}

impl DeliveredTo {
    /// `10.0.2.2:8080`, or the bare address where no port was involved.
    pub fn address(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.ip),
            None => self.ip.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reply {
    /// What the client sees as the reply's source and destination, if it arrives.
    pub seen_by_client: Option<Tuple>,
    pub hops: Vec<Hop>,
}

/// Where a hop happens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Place {
    pub kind: String,
    pub name: String,
    pub node: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hop {
    #[serde(rename = "where")]
    pub place: Place,
    /// The interface the packet came in on, or `None` where it was sent from.
    pub iif: Option<String>,
    pub packet: Tuple,
    pub steps: Vec<Step>,
}

impl Hop {
    /// The packet as it leaves the hop: as it arrived, with the hop's last translation applied.
    pub fn leaving(&self) -> Tuple {
        self.steps
            .iter()
            .rev()
            .find_map(|s| match s {
                Step::Nat { after, .. } => Some(*after),
                _ => None,
            })
            .unwrap_or(self.packet)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DnsQuery {
    pub name: String,
    /// `None` for NXDOMAIN.
    pub answer: Option<Vec<std::net::Ipv4Addr>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpCandidate {
    /// "namespace/ingress".
    pub ingress: String,
    /// The rule's host, or `*` for a rule without one; `default backend` for the Ingress's
    /// defaultBackend.
    pub host: String,
    pub path: Option<String>,
    pub path_type: Option<String>,
    pub backend: String,
    pub matches: bool,
    pub chosen: bool,
    /// Why it matches or not, or why it lost.
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Branch {
    pub rule: String,
    pub target: String,
    /// The rule's own probability (that of reaching it and matching it, given it was reached).
    pub probability: f64,
    /// The share of all new connections that take this branch.
    pub share: f64,
    pub chosen: bool,
    /// The address the branch's DNAT sends to, when it has one.
    pub to: Option<SocketAddrV4>,
    /// What stands behind that address, in Kubernetes words (the pod `default/web-2`, or
    /// `node node-1` for a load balancer's target), when the tracer knows.
    pub endpoint: Option<String>,
    /// The node that runs the endpoint pod.
    pub node: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    Route {
        table: String,
        destination: std::net::Ipv4Addr,
        matched: Option<String>,
        #[serde(rename = "type")]
        route_type: Option<String>,
        via: Option<std::net::Ipv4Addr>,
        dev: Option<String>,
        rejected: Vec<Rejected>,
        origin: Option<String>,
    },
    Netfilter {
        hook: String,
        table: String,
        chain: String,
        /// The rule that decided, in iptables-save form; `None` when the chain ran out.
        rule: Option<String>,
        /// What happened: a jump, a verdict, or "no rule matched".
        action: String,
    },
    LoadBalance {
        chain: String,
        branches: Vec<Branch>,
        how: String,
    },
    Nat {
        nat: String,
        before: Tuple,
        after: Tuple,
        conntrack: Option<String>,
        /// For a DNAT, what stands behind the new destination in Kubernetes words (the pod
        /// `default/web-2`, or `node node-1`), when the tracer knows.
        endpoint: Option<String>,
        /// The node that runs that pod.
        node: Option<String>,
    },
    Forward {
        via: String,
        detail: String,
    },
    Deliver {
        listener: String,
    },
    /// The pod's resolver turning a name into addresses.
    Dns {
        name: String,
        /// The search list from the pod's resolv.conf, and its ndots setting.
        search: Vec<String>,
        ndots: u8,
        /// Every name asked, in order, with what the cluster DNS answered.
        queries: Vec<DnsQuery>,
        /// The addresses of the first name that had any.
        answer: Vec<std::net::Ipv4Addr>,
        /// What the answer stands for ("ClusterIP of Service shop/web").
        record: Option<String>,
    },
    /// The ingress controller's choice of backend for an HTTP request.
    Http {
        host: String,
        path: String,
        /// Every rule that could apply, in the order the controller weighs them.
        candidates: Vec<HttpCandidate>,
        /// The backend chosen: "namespace/service:port", or `None` for a 404.
        backend: Option<String>,
        /// How the controller reaches the backend.
        how: String,
    },
    /// A NetworkPolicy decision for one direction at one pod.
    Policy {
        /// `ingress` (at the receiving pod) or `egress` (at the sending pod).
        direction: String,
        /// The pod the decision is for, `namespace/name`.
        pod: String,
        /// Who enforces policies in the cluster (`kube-router`, `none`, ...).
        enforcer: String,
        /// The policies that select the pod for this direction, `namespace/name`.
        policies: Vec<String>,
        /// `allowed`, `denied`, `not_isolated`, `from_node`, `established` or `not_enforced`.
        verdict: String,
        /// The rule that allowed it: `namespace/name ingress rule 0`.
        rule: Option<String>,
        /// The decision in one line.
        summary: String,
    },
    Drop {
        reason: String,
    },
    Note {
        text: String,
    },
    /// A packet wrapped for a tunnel, or unwrapped on arrival: the inner packet travels inside
    /// an outer one between the two nodes' own addresses.
    Tunnel {
        /// `encapsulate` or `decapsulate`.
        action: String,
        /// `vxlan` or `ipip`.
        encapsulation: String,
        device: String,
        /// The VXLAN network identifier.
        vni: Option<u32>,
        inner: Tuple,
        outer_src: std::net::Ipv4Addr,
        outer_dst: std::net::Ipv4Addr,
        /// The outer UDP destination port (VXLAN); IP-in-IP has none.
        outer_port: Option<u16>,
        /// How the outer destination was found (the neighbour and FDB entries), or which
        /// device took the packet in.
        detail: String,
    },
}
