//! What `--from` and `--to` mean in a cluster: which network namespace sends, to which address
//! and port, with a note for each name resolved. Kubernetes words live here, so the simulator can
//! stay with addresses.

pub mod dns;
mod external_ip;
pub mod http;
pub mod names;
mod port;
mod request;
mod skipped;
mod source;

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::compile::cloud::{lb_backends, lb_targets};
use crate::model::{Cluster, Protocol, ServiceType};
use crate::net::NetState;
use crate::trace::Step;
use request::{HttpAsk, ingress_request, parse_url};

pub use port::{parse_port, refuse_ipv6};
use port::{split_port, split_port_spec, with_port};
pub use source::INTERNET_CLIENT;

/// Where the traced packet starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A socket in this host.
    Socket(usize),
    /// Beyond an uplink: the packet first appears arriving on `iif` of `host`.
    Outside { host: usize, iif: String },
}

/// An HTTP request an ingress controller will route once it has the connection.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub host: String,
    pub path: String,
    /// Index into `Cluster::services`: the controller's Service.
    pub controller: usize,
}

#[derive(Debug, Clone)]
pub struct Endpoints {
    pub origin: Origin,
    pub src_ip: Ipv4Addr,
    /// `None` when the name given resolves to no address.
    pub dst: Option<SocketAddrV4>,
    pub protocol: Protocol,
    pub notes: Vec<String>,
    /// The client, for replies: the pod or node the user named, or the outside address.
    pub client: String,
    /// The resolver's work, when the destination was a DNS name.
    pub dns: Option<Step>,
    /// Addresses that pin load-balancing decisions (`--via-node`).
    pub pins: Vec<Ipv4Addr>,
    pub http: Option<HttpRequest>,
    /// The Service whose load-balancer address is dialled.
    pub load_balancer: Option<usize>,
}

pub struct Query<'a> {
    pub from: &'a str,
    pub container: Option<&'a str>,
    pub to: &'a str,
    pub port: Option<u16>,
    /// A port given by name (`--port http`): a Service port's or a container port's name.
    pub port_name: Option<&'a str>,
    pub protocol: Option<Protocol>,
    pub namespace: &'a str,
    /// The address of the pod `--endpoint` names.
    pub endpoint: Option<Ipv4Addr>,
    pub via_node: Option<&'a str>,
}

impl<'a> Query<'a> {
    /// A question from `from` to `to` with nothing else said: the `default` namespace, the
    /// destination's own port and protocol, the first endpoint.
    pub fn new(from: &'a str, to: &'a str) -> Query<'a> {
        Query {
            from,
            container: None,
            to,
            port: None,
            port_name: None,
            protocol: None,
            namespace: "default",
            endpoint: None,
            via_node: None,
        }
    }
}

/// A mistake in `--from`/`--to`/`--port`, worded for the user.
pub type Error = String;

/// Which part of a question a mistake is in, so a trace case can point at its field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    From,
    Container,
    To,
    Endpoint,
    ViaNode,
}

/// A mistake in the question, with the part of it that is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: Field,
    pub message: String,
}

impl Problem {
    pub fn new(field: Field, message: impl Into<String>) -> Self {
        Problem {
            field,
            message: message.into(),
        }
    }

    /// The message as the command line words it: naming the flag when the mistake is in one.
    pub fn for_command_line(&self) -> String {
        match self.field {
            Field::Endpoint => format!("--endpoint: {}", self.message),
            Field::ViaNode if !self.message.starts_with("--via-node") => format!("--via-node: {}", self.message),
            _ => self.message.clone(),
        }
    }
}

/// A mistake in `--from` (the usual place `?` finds one in the source's resolution).
impl From<String> for Problem {
    fn from(message: String) -> Self {
        Problem::new(Field::From, message)
    }
}

fn split_ns<'a>(name: &'a str, default_ns: &'a str) -> (&'a str, &'a str) {
    name.split_once('/').unwrap_or((default_ns, name))
}

/// `NAME` in the query's namespace, or `NS/KIND/NAME` for any of the kind's spellings.
fn kind_name<'a>(to: &'a str, default_ns: &'a str, kinds: &[&str]) -> Option<(&'a str, &'a str)> {
    kinds.iter().find_map(|k| {
        to.strip_prefix(&format!("{k}/"))
            .map(|n| (default_ns, n))
            .or_else(|| to.split_once(&format!("/{k}/")))
    })
}

fn port_list(c: &Cluster, si: usize) -> String {
    let list: Vec<String> = c.services[si]
        .ports
        .iter()
        .map(|p| format!("{}/{}", p.port, p.protocol))
        .collect();
    list.join(", ")
}

/// The Service port asked for, or its only one; and the protocol.
fn service_port(c: &Cluster, si: usize, q: &Query<'_>) -> Result<(u16, Protocol), Error> {
    let s = &c.services[si];
    let named = match q.port_name {
        Some(name) if q.port.is_none() => Some(
            s.ports
                .iter()
                .find(|p| p.name.as_deref() == Some(name))
                .map(|p| p.port)
                .ok_or_else(|| {
                    let names: Vec<String> = s
                        .ports
                        .iter()
                        .map(|p| match &p.name {
                            Some(n) => format!("{n} ({}/{})", p.port, p.protocol),
                            None => format!("(unnamed) {}/{}", p.port, p.protocol),
                        })
                        .collect();
                    format!(
                        "service {} has no port named {name}; its ports: {}",
                        s.qualified_name(),
                        names.join(", ")
                    )
                })?,
        ),
        _ => None,
    };
    let port = match q.port.or(named) {
        Some(p) => p,
        None => match s.ports.as_slice() {
            [only] => only.port,
            _ => {
                return Err(format!(
                    "service {} has several ports; pick one with --port ({})",
                    s.qualified_name(),
                    port_list(c, si)
                ));
            }
        },
    };
    let protocol = q
        .protocol
        .or_else(|| s.ports.iter().find(|p| p.port == port).map(|p| p.protocol))
        .unwrap_or(Protocol::Tcp);
    Ok((port, protocol))
}

fn cluster_ip_note(c: &Cluster, si: usize, ip: Ipv4Addr, port: u16, protocol: Protocol) -> String {
    let s = &c.services[si];
    if !protocol.has_ports() {
        return format!(
            "svc/{} is ClusterIP {ip}; kube-proxy writes rules only for its ports ({}), and an ICMP echo matches none of them",
            s.name,
            port_list(c, si)
        );
    }
    match s.ports.iter().find(|p| p.port == port && p.protocol == protocol) {
        Some(sp) => format!(
            "svc/{} is ClusterIP {ip}; port {port}/{protocol} targets {} on {} endpoint{}",
            s.name,
            sp.target_port,
            sp.endpoints.len(),
            if sp.endpoints.len() == 1 { "" } else { "s" }
        ),
        None => format!(
            "svc/{} is ClusterIP {ip}, but it does not expose port {port}/{protocol} (it exposes {}): no kube-proxy rule will match",
            s.name,
            port_list(c, si)
        ),
    }
}

pub fn resolve(c: &Cluster, state: &NetState, q: &Query<'_>) -> Result<Endpoints, Error> {
    resolve_fields(c, state, q).map_err(|p| p.for_command_line())
}

/// The namespace for names that carry none: the sending pod's, as its DNS search list would
/// use, or else the query's (`-n`).
fn names_namespace<'a>(c: &'a Cluster, q: &Query<'a>, sender: Option<usize>) -> &'a str {
    sender.map(|p| c.pods[p].namespace.as_str()).unwrap_or(q.namespace)
}

/// The address of the pod `--endpoint` names (`POD`, `NAMESPACE/POD` or `pod/POD`), in the
/// sender's namespace unless it gives one.
pub fn endpoint_address(c: &Cluster, state: &NetState, q: &Query<'_>, name: &str) -> Result<Ipv4Addr, Problem> {
    let sender = source::resolve(c, state, q, &mut Vec::new())?.pod;
    let bare = name.strip_prefix("pod/").unwrap_or(name);
    let (ns, pod) = bare.split_once('/').unwrap_or((names_namespace(c, q, sender), bare));
    c.pod_named(ns, pod)
        .map(|i| c.pods[i].ip)
        .ok_or_else(|| Problem::new(Field::Endpoint, names::no_pod(c, ns, pod)))
}

/// As [`resolve`], saying which part of the question a mistake is in.
pub fn resolve_fields(c: &Cluster, state: &NetState, q: &Query<'_>) -> Result<Endpoints, Problem> {
    let mut notes = Vec::new();
    let from = source::resolve(c, state, q, &mut notes)?;
    let q = &Query {
        namespace: names_namespace(c, q, from.pod),
        ..*q
    };
    let mut ends = Endpoints {
        origin: from.origin,
        src_ip: from.ip,
        dst: None,
        protocol: q.protocol.unwrap_or(Protocol::Tcp),
        notes: Vec::new(),
        client: from.client,
        dns: None,
        pins: Vec::new(),
        http: None,
        load_balancer: None,
    };
    let icmp = q.protocol == Some(Protocol::Icmp);
    if icmp && (q.port.is_some() || q.port_name.is_some()) {
        return Err(Problem::new(
            Field::To,
            "an ICMP echo has no port; leave out --port with --protocol icmp",
        ));
    }
    if icmp && q.to.contains("://") {
        return Err(Problem::new(
            Field::To,
            "an HTTP request is TCP; to ping the ingress controller, name its pod or Service",
        ));
    }
    // The port is only a placeholder that saves asking which of a Service's ports is meant:
    // an echo carries none, and no rule that names a port matches it.
    let asked = Query {
        port: if icmp { Some(0) } else { q.port },
        ..*q
    };
    let (dst, protocol) =
        destination(c, &asked, from.pod, &mut ends, &mut notes).map_err(|m| Problem::new(Field::To, m))?;
    if icmp && ends.http.is_some() {
        return Err(Problem::new(
            Field::To,
            "an HTTP request is TCP; to ping the ingress controller, name its pod or Service",
        ));
    }
    if matches!(ends.origin, Origin::Outside { .. }) && dst.is_some_and(|d| d.ip().is_loopback()) {
        return Err(Problem::new(
            Field::To,
            "localhost of a client on the internet is its own machine, which is not modelled",
        ));
    }
    // The kernel picks the source address from the route that wins: for 127.0.0.0/8 that is
    // `local ... dev lo src 127.0.0.1`, so a socket dialling localhost sends from 127.0.0.1.
    if dst.is_some_and(|d| d.ip().is_loopback()) {
        ends.src_ip = Ipv4Addr::LOCALHOST;
    }
    ends.dst = dst;
    ends.protocol = protocol;
    notes.extend(dst.and_then(|d| external_ip::note(c, *d.ip())));
    if let (Origin::Socket(host), Some(d)) = (&ends.origin, dst)
        && let Some((ip, route)) = source::preferred_source(state, *host, *d.ip())
        && ip != ends.src_ip
    {
        notes.push(format!(
            "the route to {} (`{route}`) names {ip} as its source: the unbound socket sends from {ip}, not {}",
            d.ip(),
            ends.src_ip
        ));
        ends.src_ip = ip;
    }
    if let Some(dst) = dst
        && ends.load_balancer.is_none()
    {
        ends.load_balancer = c.service_with_load_balancer_ip(*dst.ip());
    }
    // Under the Local policy only the endpoint's own node can deliver to it: pin the load
    // balancer there too.
    if let (Some(si), Some(ip), None) = (ends.load_balancer, q.endpoint, q.via_node)
        && dst.is_some_and(|d| Some(*d.ip()) == c.services[si].load_balancer_ip)
        && c.services[si].external_traffic_policy == crate::model::TrafficPolicy::Local
        && let Some(pod) = c.pod_with_ip(ip).map(|i| &c.pods[i])
    {
        ends.pins.push(c.nodes[pod.node].ip);
    }
    if let Some(node) = q.via_node {
        let ni = c
            .node_named(node)
            .ok_or_else(|| Problem::new(Field::ViaNode, names::no_node(c, node)))?;
        match ends.load_balancer {
            Some(si) if dst.is_some_and(|d| Some(*d.ip()) == c.services[si].load_balancer_ip) => {
                let backends = lb_backends(c, &c.services[si]);
                let sent_to = lb_targets(backends.clone()).iter().any(|b| b.node == ni);
                if let Some(b) = backends.iter().find(|b| b.node == ni).filter(|_| !sent_to) {
                    return Err(Problem::new(
                        Field::ViaNode,
                        format!(
                            "--via-node {node}: the load balancer never sends there ({}); to see what the node does with such a packet, trace --from internet --to node/{node}:NODEPORT",
                            b.why
                        ),
                    ));
                }
                ends.pins.push(c.nodes[ni].ip);
            }
            _ if ends.http.is_some() => {}
            _ => {
                return Err(Problem::new(
                    Field::ViaNode,
                    format!(
                        "--via-node picks the node a cloud load balancer sends to; {} is not a load-balancer address",
                        q.to
                    ),
                ));
            }
        }
    }
    ends.notes = notes;
    Ok(ends)
}

/// `--to`: the address and port dialled (`None` when a name resolves to nothing).
fn destination(
    c: &Cluster,
    q: &Query<'_>,
    src_pod: Option<usize>,
    ends: &mut Endpoints,
    notes: &mut Vec<String>,
) -> Result<(Option<SocketAddrV4>, Protocol), Error> {
    let to = q.to;
    let tcp = q.protocol.unwrap_or(Protocol::Tcp);
    refuse_ipv6(to)?;
    if let Some((scheme, rest)) = to.split_once("://") {
        let (host, path, https) = parse_url(scheme, rest, q.port)?;
        return ingress_request(
            c,
            q,
            ends,
            notes,
            HttpAsk {
                host: &host,
                path: &path,
                https,
                controller: None,
            },
        )
        .map(|d| (Some(d), Protocol::Tcp));
    }
    if let Some((ns, name)) = kind_name(to, q.namespace, &["ingress", "ing", "ingresses"]) {
        let ing = c
            .ingresses
            .iter()
            .find(|i| i.namespace == ns && i.name == name)
            .ok_or_else(|| names::no_ingress(c, ns, name))?;
        // The first path of the first rule, with a wildcard host given a label to match.
        let (host, path) = match ing.rules.first() {
            Some(rule) => (
                match rule.host.as_deref() {
                    Some(h) => h.replacen('*', "www", 1),
                    None => "example.com".to_owned(),
                },
                rule.paths.first().map(|p| p.path.clone()).unwrap_or_else(|| "/".into()),
            ),
            None => ("example.com".to_owned(), "/".to_owned()),
        };
        notes.push(format!(
            "ingress/{name} stands for http://{host}{path}, the first path of its first rule"
        ));
        return ingress_request(
            c,
            q,
            ends,
            notes,
            HttpAsk {
                host: &host,
                path: &path,
                https: false,
                controller: Some(ing.controller),
            },
        )
        .map(|d| (Some(d), Protocol::Tcp));
    }
    if let Some((ns, name)) = kind_name(to, q.namespace, &["lb", "loadbalancer", "loadbalancers"]) {
        let (name, port) = split_port_spec(name)?;
        let q = &with_port(q, port);
        let si = c
            .service_named(ns, name)
            .ok_or_else(|| names::no_service(c, ns, name))?;
        let s = &c.services[si];
        let ip = s.load_balancer_ip.ok_or_else(|| {
            format!(
                "service {ns}/{name} has no load-balancer address (it is of type {}{})",
                s.kind,
                if s.kind == ServiceType::LoadBalancer {
                    " but gives no loadBalancerIP"
                } else {
                    ""
                }
            )
        })?;
        let (port, protocol) = service_port(c, si, q)?;
        match s.ports.iter().find(|p| p.port == port && p.protocol == protocol) {
            _ if !protocol.has_ports() => notes.push(format!(
                "lb/{name} is {ip}, the load-balancer address of service {ns}/{name}, which forwards only its ports ({}); an ICMP echo is none of them",
                port_list(c, si)
            )),
            Some(sp) => notes.push(format!(
                "lb/{name} is {ip}, the load-balancer address of service {ns}/{name}; port {port}/{protocol} goes on to NodePort {} of a node",
                sp.node_port.map(|n| n.to_string()).unwrap_or_else(|| "(none)".into())
            )),
            None => notes.push(format!(
                "lb/{name} is {ip}, but service {ns}/{name} does not expose port {port}/{protocol} (it exposes {})",
                port_list(c, si)
            )),
        }
        skipped::notes(c, si, port, protocol, notes);
        ends.load_balancer = Some(si);
        return Ok((Some(SocketAddrV4::new(ip, port)), protocol));
    }
    if let Some((ns, name)) = kind_name(to, q.namespace, &["svc", "service", "services"]) {
        let (name, port) = split_port_spec(name)?;
        let q = &with_port(q, port);
        let si = c
            .service_named(ns, name)
            .ok_or_else(|| names::no_service(c, ns, name))?;
        let ip = c.services[si].cluster_ip.ok_or_else(|| {
            format!("service {ns}/{name} is headless: it has no ClusterIP; trace to one of its pods, or to its DNS name {name}.{ns}")
        })?;
        let (port, protocol) = service_port(c, si, q)?;
        notes.push(cluster_ip_note(c, si, ip, port, protocol));
        skipped::notes(c, si, port, protocol, notes);
        return Ok((Some(SocketAddrV4::new(ip, port)), protocol));
    }
    if let Some(node) = to.strip_prefix("node/") {
        let (node, port) = split_port(node)?;
        let i = c.node_named(node).ok_or_else(|| names::no_node(c, node))?;
        let port = q
            .port
            .or(port)
            .ok_or_else(|| format!("give a port for node/{node}, as node/{node}:PORT or --port"))?;
        notes.push(format!("node/{node} is {}", c.nodes[i].ip));
        return Ok((Some(SocketAddrV4::new(c.nodes[i].ip, port)), tcp));
    }
    if let Some(rest) = to.strip_prefix("localhost:").or_else(|| to.strip_prefix("127.0.0.1:")) {
        let port = parse_port(rest)?;
        notes.push("localhost stays inside the sender's network namespace (for a pod, its containers share it), and the kernel sends from 127.0.0.1, the address of lo".into());
        return Ok((
            Some(SocketAddrV4::new(Ipv4Addr::LOCALHOST, q.port.unwrap_or(port))),
            tcp,
        ));
    }
    if let Ok(ip) = to.parse::<Ipv4Addr>() {
        let port = q
            .port
            .ok_or_else(|| format!("give a port for {ip}, as {ip}:PORT or --port"))?;
        return Ok((Some(SocketAddrV4::new(ip, port)), tcp));
    }
    if let Some((ip, port)) = to.rsplit_once(':')
        && let Ok(ip) = ip.parse::<Ipv4Addr>()
    {
        let port = parse_port(port)?;
        return Ok((Some(SocketAddrV4::new(ip, q.port.unwrap_or(port))), tcp));
    }
    let bare = to.strip_prefix("pod/").or_else(|| to.strip_prefix("pods/"));
    let (name, port) = split_port_spec(bare.unwrap_or(to))?;
    let q = &with_port(q, port);
    // A name with neither a kind nor a namespace is a DNS name, as it is to `curl NAME` in a
    // pod: the resolver never turns a pod's name into the pod, so `pod/NAME` is how to mean one.
    if bare.is_none() && !name.contains('/') {
        return dns::dns_name(c, q, src_pod, ends, notes, name, None);
    }
    let (ns, pod) = split_ns(name, q.namespace);
    let pi = c.pod_named(ns, pod).ok_or_else(|| match bare {
        Some(_) => names::no_pod(c, ns, pod),
        None => format!("{} (write NAMESPACE/svc/NAME for a Service)", names::no_pod(c, ns, pod)),
    })?;
    let p = &c.pods[pi];
    let port = match (q.port, q.port_name) {
        (Some(port), _) => port,
        (None, Some(wanted)) => match p.listeners().find(|(_, cp)| cp.name.as_deref() == Some(wanted)) {
            Some((_, cp)) => cp.port,
            None => {
                let named: Vec<String> = p
                    .listeners()
                    .filter_map(|(_, cp)| cp.name.as_ref().map(|n| format!("{n} ({}/{})", cp.port, cp.protocol)))
                    .collect();
                return Err(format!(
                    "pod {ns}/{pod} has no container port named {wanted}; its named ports: {}",
                    if named.is_empty() {
                        "none".to_owned()
                    } else {
                        named.join(", ")
                    }
                ));
            }
        },
        (None, None) => match p.listeners().collect::<Vec<_>>().as_slice() {
            [(_, only)] => only.port,
            [] => {
                return Err(format!(
                    "pod {ns}/{pod} declares no container port; give one with --port"
                ));
            }
            many => {
                let list: Vec<String> = many
                    .iter()
                    .map(|(_, cp)| format!("{}/{}", cp.port, cp.protocol))
                    .collect();
                return Err(format!(
                    "pod {ns}/{pod} listens on several ports; pick one with --port ({})",
                    list.join(", ")
                ));
            }
        },
    };
    let protocol = q
        .protocol
        .or_else(|| p.listeners().find(|(_, cp)| cp.port == port).map(|(_, cp)| cp.protocol))
        .unwrap_or(Protocol::Tcp);
    notes.push(format!("pod {ns}/{pod} is {} on node {}", p.ip, c.nodes[p.node].name));
    Ok((Some(SocketAddrV4::new(p.ip, port)), protocol))
}

/// The pod whose address and port the packet was finally delivered to, if any.
pub fn pod_at(c: &Cluster, state: &NetState, host: usize, port: u16) -> Option<usize> {
    let h = &state.hosts[host];
    match &h.role {
        crate::net::Role::Pod { namespace, name, .. } => c.pod_named(namespace, name),
        crate::net::Role::Node { name } => {
            let node = c.node_named(name)?;
            c.pods_on(node)
                .find(|(_, p)| p.host_network && p.listeners().any(|(_, cp)| cp.port == port))
                .map(|(i, _)| i)
        }
        _ => None,
    }
}
