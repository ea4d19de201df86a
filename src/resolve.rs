//! What `--from` and `--to` mean in a cluster: which network namespace sends, to which address
//! and port, with a note for each name resolved. Kubernetes words live here, so the simulator can
//! stay with addresses.

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::compile::pod_host_name;
use crate::model::{Cluster, Protocol};
use crate::net::NetState;

#[derive(Debug, Clone)]
pub struct Endpoints {
    pub src_host: usize,
    pub src_ip: Ipv4Addr,
    pub dst: SocketAddrV4,
    pub protocol: Protocol,
    pub notes: Vec<String>,
    /// The client, for replies: the pod or node the user named.
    pub client: String,
}

pub struct Query<'a> {
    pub from: &'a str,
    pub container: Option<&'a str>,
    pub to: &'a str,
    pub port: Option<u16>,
    pub protocol: Option<Protocol>,
    pub namespace: &'a str,
}

/// A mistake in `--from`/`--to`/`--port`, worded for the user.
pub type Error = String;

fn split_ns<'a>(name: &'a str, default_ns: &'a str) -> (&'a str, &'a str) {
    name.split_once('/').unwrap_or((default_ns, name))
}

pub fn resolve(c: &Cluster, state: &NetState, q: &Query<'_>) -> Result<Endpoints, Error> {
    let mut notes = Vec::new();
    let host_of = |name: &str| {
        state
            .host_named(name)
            .ok_or_else(|| format!("no network namespace for {name}"))
    };

    // The source: a node, or a pod (optionally one of its containers).
    // An address stands for the pod (or node) that holds it.
    let from_ip = q.from.parse::<Ipv4Addr>().ok();
    let named_by_ip = from_ip.and_then(|ip| {
        c.pods
            .iter()
            .find(|p| p.ip == ip && !p.host_network)
            .map(|p| format!("{}/{}", p.namespace, p.name))
            .or_else(|| c.nodes.iter().find(|n| n.ip == ip).map(|n| format!("node/{}", n.name)))
    });
    if let (Some(ip), None) = (from_ip, &named_by_ip) {
        return Err(format!("no pod or node has the address {ip}"));
    }
    if let (Some(ip), Some(name)) = (from_ip, &named_by_ip) {
        notes.push(format!("{ip} is {name}"));
    }
    let from = named_by_ip.as_deref().unwrap_or(q.from);
    let (src_host, src_ip, client) = if let Some(node) = from.strip_prefix("node/") {
        let i = c.node_named(node).ok_or_else(|| format!("no node `{node}`"))?;
        notes.push(format!(
            "node/{node} sends from its own network namespace, address {}",
            c.nodes[i].ip
        ));
        (host_of(node)?, c.nodes[i].ip, format!("node/{node}"))
    } else {
        let name = from.strip_prefix("pod/").unwrap_or(from);
        let parts: Vec<&str> = name.split('/').collect();
        // `a/b` is namespace/pod when such a pod exists, else pod/container.
        let (ns, pod, container) = match parts.as_slice() {
            [pod] => (q.namespace, *pod, q.container),
            [a, b] if c.pod_named(a, b).is_some() => (*a, *b, q.container),
            [pod, ct] => (q.namespace, *pod, Some(*ct)),
            [ns, pod, ct] => (*ns, *pod, Some(*ct)),
            _ => {
                return Err(format!(
                    "`{}` is not a pod: write POD, NAMESPACE/POD or POD/CONTAINER",
                    q.from
                ));
            }
        };
        let pi = c.pod_named(ns, pod).ok_or_else(|| format!("no pod `{ns}/{pod}`"))?;
        let p = &c.pods[pi];
        if let Some(ct) = container
            && !p.containers.iter().any(|x| x.name == ct)
        {
            let names: Vec<&str> = p.containers.iter().map(|x| x.name.as_str()).collect();
            return Err(format!(
                "pod {ns}/{pod} has no container `{ct}` (it has: {})",
                names.join(", ")
            ));
        }
        let node = &c.nodes[p.node].name;
        let host = if p.host_network {
            host_of(node)?
        } else {
            host_of(&pod_host_name(ns, pod))?
        };
        let who = match container {
            Some(ct) => format!("container {ct} of pod {ns}/{pod}"),
            None => format!("pod {ns}/{pod}"),
        };
        if p.host_network {
            notes.push(format!(
                "{who} uses the host network: it sends from node {node}'s namespace, address {}",
                p.ip
            ));
        } else {
            notes.push(format!("{who} sends from the pod's network namespace (shared by all its containers), address {}, on node {node}", p.ip));
        }
        (host, p.ip, format!("{ns}/{pod}"))
    };

    // The destination.
    let to = q.to;
    let svc_name = to
        .strip_prefix("svc/")
        .or_else(|| to.strip_prefix("service/"))
        .map(|n| (q.namespace, n))
        .or_else(|| to.split_once("/svc/").or_else(|| to.split_once("/service/")));
    let (dst_ip, port, protocol) = if let Some((ns, name)) = svc_name {
        let si = c
            .service_named(ns, name)
            .ok_or_else(|| format!("no service `{ns}/{name}`"))?;
        let s = &c.services[si];
        let ip = s.cluster_ip.ok_or_else(|| {
            format!("service {ns}/{name} is headless: it has no ClusterIP; trace to one of its pods instead")
        })?;
        let port = match q.port {
            Some(p) => p,
            None => match s.ports.as_slice() {
                [only] => only.port,
                many => {
                    let list: Vec<String> = many.iter().map(|p| format!("{}/{}", p.port, p.protocol)).collect();
                    return Err(format!(
                        "service {ns}/{name} has several ports; pick one with --port ({})",
                        list.join(", ")
                    ));
                }
            },
        };
        let protocol = q
            .protocol
            .or_else(|| s.ports.iter().find(|p| p.port == port).map(|p| p.protocol))
            .unwrap_or(Protocol::Tcp);
        match s.ports.iter().find(|p| p.port == port && p.protocol == protocol) {
            Some(sp) => notes.push(format!(
                "svc/{name} is ClusterIP {ip}; port {port}/{protocol} targets {} on {} endpoint{}",
                sp.target_port,
                sp.endpoints.len(),
                if sp.endpoints.len() == 1 { "" } else { "s" }
            )),
            None => {
                let list: Vec<String> = s.ports.iter().map(|p| format!("{}/{}", p.port, p.protocol)).collect();
                notes.push(format!(
                    "svc/{name} is ClusterIP {ip}, but it does not expose port {port}/{protocol} (it exposes {}): no kube-proxy rule will match",
                    list.join(", ")
                ));
            }
        }
        (ip, port, protocol)
    } else if let Some(node) = to.strip_prefix("node/") {
        let (node, port) = split_port(node)?;
        let i = c.node_named(node).ok_or_else(|| format!("no node `{node}`"))?;
        let port = q
            .port
            .or(port)
            .ok_or_else(|| format!("give a port for node/{node}, as node/{node}:PORT or --port"))?;
        notes.push(format!("node/{node} is {}", c.nodes[i].ip));
        (c.nodes[i].ip, port, q.protocol.unwrap_or(Protocol::Tcp))
    } else if let Some(rest) = to.strip_prefix("localhost:").or_else(|| to.strip_prefix("127.0.0.1:")) {
        let port: u16 = rest.parse().map_err(|_| format!("`{rest}` is not a port"))?;
        notes.push("localhost stays inside the sender's network namespace: for a pod, its containers share it".into());
        (
            Ipv4Addr::LOCALHOST,
            q.port.unwrap_or(port),
            q.protocol.unwrap_or(Protocol::Tcp),
        )
    } else if let Ok(ip) = to.parse::<Ipv4Addr>() {
        let port = q
            .port
            .ok_or_else(|| format!("give a port for {ip}, as {ip}:PORT or --port"))?;
        (ip, port, q.protocol.unwrap_or(Protocol::Tcp))
    } else if let Ok(addr) = to.parse::<SocketAddrV4>() {
        (
            *addr.ip(),
            q.port.unwrap_or(addr.port()),
            q.protocol.unwrap_or(Protocol::Tcp),
        )
    } else {
        let name = to.strip_prefix("pod/").unwrap_or(to);
        let (name, port) = split_port(name)?;
        let (ns, pod) = split_ns(name, q.namespace);
        let pi = c
            .pod_named(ns, pod)
            .ok_or_else(|| format!("no pod or service `{to}` (write svc/NAME for a Service)"))?;
        let p = &c.pods[pi];
        let port = match q.port.or(port) {
            Some(port) => port,
            None => match p.listeners().collect::<Vec<_>>().as_slice() {
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
        (p.ip, port, protocol)
    };
    Ok(Endpoints {
        src_host,
        src_ip,
        dst: SocketAddrV4::new(dst_ip, port),
        protocol,
        notes,
        client,
    })
}

fn split_port(text: &str) -> Result<(&str, Option<u16>), Error> {
    match text.rsplit_once(':') {
        Some((name, port)) => Ok((name, Some(port.parse().map_err(|_| format!("`{port}` is not a port"))?))),
        None => Ok((text, None)),
    }
}

/// The pod whose address and port the packet was finally delivered to, if any.
pub fn pod_at(c: &Cluster, state: &NetState, host: usize, port: u16) -> Option<usize> {
    let h = &state.hosts[host];
    match &h.role {
        crate::net::Role::Pod { namespace, name, .. } => c.pod_named(namespace, name),
        crate::net::Role::Node { name } => {
            let node = c.node_named(name)?;
            c.pods
                .iter()
                .position(|p| p.node == node && p.host_network && p.listeners().any(|(_, cp)| cp.port == port))
        }
        _ => None,
    }
}
