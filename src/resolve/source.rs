//! `--from`: which network namespace sends, from which address.

use std::net::Ipv4Addr;

use super::{Field, Origin, Problem, Query, names};
use crate::compile::{INTERNET, pod_host_name};
use crate::model::Cluster;
use crate::net::NetState;

/// The address `--from internet` sends from: one reserved for documentation (RFC 5737).
pub const INTERNET_CLIENT: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);

pub struct Source {
    pub origin: Origin,
    pub ip: Ipv4Addr,
    /// The client, for replies: the pod or node the user named, or the outside address.
    pub client: String,
    /// The pod that sends, when it is one (its namespace drives DNS search).
    pub pod: Option<usize>,
}

/// The address an unbound socket in `host` sends to `dst` from, as the kernel picks it: the
/// chosen route's preferred source (`src`) when it has one (a connected route's is its
/// interface's address, a `local` route's the local address itself, 127.0.0.1 for loopback),
/// otherwise the first address of the route's device. With the route, for the note.
pub fn preferred_source(state: &NetState, host: usize, dst: Ipv4Addr) -> Option<(Ipv4Addr, String)> {
    let h = &state.hosts[host];
    let route = crate::net::route::lookup(&h.tables, dst).route?;
    let ip = route.src.or_else(|| {
        let dev = h.interface(route.dev.as_deref()?)?;
        dev.addrs.first().map(|a| a.addr())
    })?;
    Some((ip, route.to_string()))
}

pub fn resolve(c: &Cluster, state: &NetState, q: &Query<'_>, notes: &mut Vec<String>) -> Result<Source, Problem> {
    let host_of = |name: &str| {
        state
            .host_named(name)
            .ok_or_else(|| format!("no network namespace for {name}"))
    };
    super::refuse_ipv6(q.from)?;
    if q.from == "internet" || q.from.starts_with("external:") {
        let ip = match q.from.strip_prefix("external:") {
            None => INTERNET_CLIENT,
            Some(text) => {
                super::refuse_ipv6(text)?;
                text.parse::<Ipv4Addr>()
                    .map_err(|_| format!("`{text}` is not an IPv4 address: write external:203.0.113.7"))?
            }
        };
        if ip.is_private()
            || ip.is_loopback()
            || ip.is_unspecified()
            || ip.is_link_local()
            || ip.is_multicast()
            || ip.is_broadcast()
            || ip.octets()[0] == 100 && (ip.octets()[1] & 0xc0) == 64
        {
            return Err(format!(
                "external:{ip} is not an address a client on the internet can have: pick a public one, such as 203.0.113.7"
            ).into());
        }
        if c.services.iter().any(|s| s.external_ips.contains(&ip)) {
            return Err(format!(
                "external:{ip} is an externalIP of a Service of the cluster: pick the client's own address"
            )
            .into());
        }
        if c.services.iter().any(|s| s.load_balancer_ip == Some(ip)) {
            return Err(format!(
                "external:{ip} is a load-balancer address of the cluster: pick the client's own address"
            )
            .into());
        }
        for (what, net) in [
            ("node network", c.node_network),
            ("pod network", c.pod_network),
            ("service network", c.service_network),
        ] {
            if net.contains(&ip) {
                return Err(format!(
                    "external:{ip} lies in the cluster's {what} {net}: pick an address outside the cluster"
                )
                .into());
            }
        }
        notes.push(format!(
            "a client on the internet, address {ip}: its packet reaches the cloud through the internet gateway"
        ));
        return Ok(Source {
            origin: Origin::Outside {
                host: host_of(INTERNET)?,
                iif: "world".into(),
            },
            ip,
            client: format!("the client {ip}"),
            pod: None,
        });
    }

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
        return Err(format!(
            "no pod or node has the address {ip} (for a client outside the cluster, write external:{ip})"
        )
        .into());
    }
    if let (Some(ip), Some(name)) = (from_ip, &named_by_ip) {
        notes.push(format!("{ip} is {name}"));
    }
    let from = named_by_ip.as_deref().unwrap_or(q.from);
    if let Some(node) = from.strip_prefix("node/") {
        let i = c.node_named(node).ok_or_else(|| names::no_node(c, node))?;
        notes.push(format!(
            "node/{node} sends from its own network namespace, address {}",
            c.nodes[i].ip
        ));
        return Ok(Source {
            origin: Origin::Socket(host_of(node)?),
            ip: c.nodes[i].ip,
            client: format!("node/{node}"),
            pod: None,
        });
    }
    let name = from.strip_prefix("pod/").unwrap_or(from);
    let parts: Vec<&str> = name.split('/').collect();
    // `a/b` is namespace/pod when such a pod exists, else pod/container.
    let (ns, pod, container) = match parts.as_slice() {
        [pod] => (q.namespace, *pod, q.container),
        [a, b] if c.pod_named(a, b).is_some() => (*a, *b, q.container),
        [pod, ct] => (q.namespace, *pod, Some(*ct)),
        [ns, pod, ct] => (*ns, *pod, Some(*ct)),
        _ => {
            return Err(format!("`{}` is not a pod: write POD, NAMESPACE/POD or POD/CONTAINER", q.from).into());
        }
    };
    let pi = c.pod_named(ns, pod).ok_or_else(|| names::no_pod(c, ns, pod))?;
    let p = &c.pods[pi];
    if let Some(ct) = container
        && !p.containers.iter().any(|x| x.name == ct)
    {
        let known: Vec<&str> = p.containers.iter().map(|x| x.name.as_str()).collect();
        return Err(Problem::new(Field::Container, names::no_container(ns, pod, ct, &known)));
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
        notes.push(format!(
            "{who} sends from the pod's network namespace (shared by all its containers), address {}, on node {node}",
            p.ip
        ));
    }
    Ok(Source {
        origin: Origin::Socket(host),
        ip: p.ip,
        client: format!("{ns}/{pod}"),
        pod: Some(pi),
    })
}
