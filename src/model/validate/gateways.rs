//! A route's gateway must be on a network the node is connected to: the kernel refuses a route
//! whose gateway no connected route covers ("Nexthop has invalid gateway"), unless the route
//! says `onlink`, which makes the kernel take the gateway to be on the device's link.

use ipnet::Ipv4Net;

use super::Validator;
use crate::input::decode::Sp;
use crate::input::spec::RouteSpec;

impl Validator {
    pub(super) fn route_gateway(
        &mut self,
        r: &RouteSpec,
        node_network: Option<&Sp<Ipv4Net>>,
        pod_cidr: Option<&Sp<Ipv4Net>>,
    ) {
        let onlink = r.onlink.as_ref().filter(|o| o.value);
        let Some(via) = &r.via else {
            if let Some(o) = onlink {
                self.error(
                    o.span,
                    "`onlink` applies only to a route with a gateway (`via`)",
                    "remove `onlink`, or add `via:`",
                );
            }
            return;
        };
        if onlink.is_some() {
            return;
        }
        // The networks each device has a connected route for.
        let connected: Vec<(&str, Ipv4Net)> = [
            node_network.map(|n| ("eth0", n.value)),
            pod_cidr.map(|c| ("cbr0", c.value)),
            Some(("lo", "127.0.0.0/8".parse().expect("a valid network"))),
        ]
        .into_iter()
        .flatten()
        .filter(|(dev, _)| r.dev.as_ref().is_none_or(|d| d.value == *dev))
        .collect();
        if connected.is_empty() || connected.iter().any(|(_, net)| net.contains(&via.value)) {
            return;
        }
        let networks: Vec<String> = connected
            .iter()
            .filter(|(dev, _)| *dev != "lo")
            .map(|(dev, net)| format!("{dev}'s {net}"))
            .collect();
        self.error(
            via.span,
            match &r.dev {
                Some(dev) => format!("gateway {} is not on {}'s network", via.value, dev.value),
                None => format!("gateway {} is on no network the node is connected to", via.value),
            },
            format!(
                "the kernel refuses such a route (\"Nexthop has invalid gateway\"): pick a gateway on {}, or add `onlink: true` if the gateway is reachable on the link anyway (a peer link, a tunnel)",
                if networks.is_empty() { "the device's network".to_owned() } else { networks.join(" or ") }
            ),
        );
    }
}
