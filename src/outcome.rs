//! What the client sees when its packet does not get through, which depends on the protocol and
//! on where the packet ended. A route that refuses on the sender's own host fails the socket
//! call at once; on a forwarding host it answers with an ICMP error, or says nothing and leaves
//! the client to time out. Measured in network namespaces (see docs/trace.md).

use crate::model::Cluster;
use crate::net::route::RouteType;
use crate::net::{NetState, Protocol, Role};
use crate::sim::End;
use crate::trace::{Trace, Verdict};

/// The client's view of `end`, for a packet of `protocol` sent from a socket on `sender` (`None`
/// for a client outside the cluster).
pub fn client_sees(state: &NetState, end: &End, sender: Option<usize>, protocol: Protocol) -> Option<String> {
    let own = |host: usize| sender == Some(host);
    let silent = "it is dropped without a word, so the client hears nothing and times out";
    Some(match end {
        End::NoRoute { host } if own(*host) => "the client's own lookup fails: the socket call returns 'Network is unreachable' at once".into(),
        End::NoRoute { .. } => "that host answers ICMP network unreachable, which the client sees as 'Network is unreachable'".into(),
        End::Route { host, .. } if matches!(state.hosts[*host].role, Role::Internet) => silent.into(),
        End::Route { host, kind, .. } => match (kind, own(*host)) {
            (RouteType::Blackhole, true) => "the client's own route refuses it: the socket call returns 'Invalid argument' at once".into(),
            (RouteType::Unreachable, true) => "the client's own route refuses it: the socket call returns 'No route to host' at once".into(),
            (RouteType::Prohibit, true) => "the client's own route refuses it: the socket call returns 'Permission denied' at once".into(),
            (RouteType::Unreachable, false) => "that host answers ICMP host unreachable, which the client sees as 'No route to host'".into(),
            (RouteType::Prohibit, false) => "that host answers ICMP administratively prohibited, which the client sees as 'No route to host'".into(),
            _ => format!("{silent} (no ICMP error comes back from a blackhole route)"),
        },
        End::NoListener { .. } => match protocol {
            Protocol::Tcp => "the client gets a reset: 'Connection refused'".into(),
            Protocol::Udp => "the host answers ICMP port unreachable: a connected UDP socket sees 'Connection refused', an unconnected one nothing".into(),
            Protocol::Sctp => "the client gets an ABORT: 'Connection refused'".into(),
            Protocol::Icmp | Protocol::Ipip => return None,
        },
        // A ping a rule rejects gets that rule's ICMP error back; every REJECT the rules hold
        // (kube-proxy's, both modes) answers port unreachable.
        End::Rejected { .. } if protocol == Protocol::Icmp => {
            "the host answers ICMP port unreachable, which ping shows as 'Destination Port Unreachable'".into()
        }
        End::Dropped { .. } | End::MartianSource { .. } => silent.into(),
        End::TtlExceeded { .. } => "the host where the TTL runs out answers ICMP time exceeded, which the client sees as 'No route to host'".into(),
        _ => return None,
    })
}

/// Words about the question itself where the bare verdict would mislead: a port the Service does
/// not expose, a next hop no pod or node holds.
pub fn refine(c: &Cluster, trace: &mut Trace, dst: std::net::SocketAddrV4, protocol: Protocol) {
    if trace.verdict.is_success() {
        return;
    }
    let service = c.services.iter().find(|s| s.cluster_ip == Some(*dst.ip()));
    if let Some(s) = service
        && protocol.has_ports()
        && !s.ports.iter().any(|p| p.port == dst.port() && p.protocol == protocol)
        && !s.ports.is_empty()
    {
        let exposed: Vec<String> = s
            .ports
            .iter()
            .map(|p| match &p.name {
                Some(n) => format!("{}/{} ({n})", p.port, p.protocol),
                None => format!("{}/{}", p.port, p.protocol),
            })
            .collect();
        trace.reason = format!(
            "service {} has no port {}/{protocol} (it exposes {}), so no kube-proxy rule translates the packet and it travels to the bare ClusterIP: {}",
            s.qualified_name(),
            dst.port(),
            exposed.join(", "),
            trace.reason
        );
        trace.hint = Some(format!(
            "use a port the Service exposes (--port {}), or add port {} to service {}",
            s.ports[0].port,
            dst.port(),
            s.qualified_name()
        ));
        return;
    }
    if let Some(s) = service
        && !protocol.has_ports()
    {
        trace.hint = Some(format!(
            "kube-proxy translates a ClusterIP only on its Service's ports: trace a port of service {} (--port {}), or ping one of its pods",
            s.qualified_name(),
            s.ports.first().map_or(0, |p| p.port)
        ));
        return;
    }
    if trace.verdict == Verdict::NoNeighbor
        && let Some(next_hop) = no_neighbor_hop(trace)
    {
        let holder = if c.pod_network.contains(&next_hop) {
            c.pod_with_ip(next_hop).is_none().then_some("pod")
        } else if c.node_network.contains(&next_hop) {
            (!c.nodes.iter().any(|n| n.ip == next_hop) && next_hop != c.gateway).then_some("node")
        } else {
            None
        };
        if let Some(kind) = holder {
            trace.reason.push_str(&format!(": no {kind} holds {next_hop}"));
            trace.hint = Some(format!(
                "check the address: no {kind} of the cluster has {next_hop}, so nothing answers ARP for it"
            ));
        }
    }
}

/// The next hop a `no_neighbor` trace gave up on, from its last hop's route.
fn no_neighbor_hop(trace: &Trace) -> Option<std::net::Ipv4Addr> {
    let hop = trace.hops.last()?;
    hop.steps.iter().rev().find_map(|s| match s {
        crate::trace::Step::Route { via, destination, .. } => Some(via.unwrap_or(*destination)),
        _ => None,
    })
}
