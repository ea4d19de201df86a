//! Turns a decoded scenario into a [`Cluster`], checking every rule a real cluster would enforce
//! (or that would make the network meaningless), and collecting all problems in one pass.

mod api_server;
mod cni;
mod duplicates;
mod endpoints;
mod external_ips;
mod gateways;
mod host_ports;
mod ingress;
mod pods;
mod policy;
mod services;
mod syntax;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::*;
use crate::diagnostic::{Diagnostic, Span};
use crate::input::decode::Sp;
use crate::input::spec::{self, Scenario};
use duplicates::Seen;

pub struct Built {
    pub cluster: Cluster,
    pub warnings: Vec<Diagnostic>,
}

/// Validates `scenario`. On success the warnings (legal but suspicious things) come with the
/// cluster; on failure every error and warning found is returned.
pub fn build(scenario: &Scenario) -> Result<Built, Vec<Diagnostic>> {
    let mut v = Validator::default();
    let cluster = v.cluster(scenario);
    if v.diagnostics.iter().any(Diagnostic::is_error) {
        return Err(v.diagnostics);
    }
    match cluster {
        Some(cluster) => Ok(Built {
            cluster,
            warnings: v.diagnostics,
        }),
        // Every path that yields no cluster has recorded an error; this keeps it so if one is missed.
        None => Err(vec![Diagnostic::error("the scenario could not be read")]),
    }
}

/// The cluster's three networks, where they could be read.
#[derive(Clone, Copy)]
struct Networks<'a> {
    node_network: Option<&'a Sp<Ipv4Net>>,
    pod_network: Option<&'a Sp<Ipv4Net>>,
    service_network: Option<&'a Sp<Ipv4Net>>,
}

#[derive(Default)]
struct Validator {
    diagnostics: Vec<Diagnostic>,
    /// The devices a node has under the cluster's CNI model, which an extra route may name.
    node_devices: Vec<&'static str>,
    /// How many did-you-mean hints were looked for; each compares a name with every known one.
    suggestions: usize,
}

/// Beyond this many, hints stop searching for the nearest name: only the first errors are
/// shown, and a file with thousands of them would otherwise cost names × nodes comparisons.
const SUGGESTIONS: usize = 100;

impl Validator {
    fn error(&mut self, span: Span, message: impl Into<String>, help: impl Into<String>) {
        self.diagnostics.push(Diagnostic::error(message).at(span).help(help));
    }

    /// Checks `value` against one of the API's [`syntax`] rules; an error says why and how.
    fn syntax(&mut self, value: &Sp<String>, what: &str, rule: fn(&str) -> Result<(), String>, help: &str) -> bool {
        match rule(value) {
            Ok(()) => true,
            Err(why) => {
                self.error(
                    value.span,
                    format!(
                        "`{}` is not a valid {what}: it {why}",
                        crate::diagnostic::shorten(&value.value)
                    ),
                    help,
                );
                false
            }
        }
    }

    /// Labels or a selector, each key and value checked as the API checks them.
    fn labels(&mut self, entries: &[(Sp<String>, Sp<String>)]) -> Vec<(String, String)> {
        let mut out = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            let key_ok = self.syntax(
                k,
                "label key",
                syntax::label_key,
                "a label key is a name such as `app`, optionally after a DNS prefix and `/`, such as `app.kubernetes.io/name`",
            );
            let value_ok = self.syntax(
                v,
                "label value",
                syntax::label_value,
                "a label value is empty or up to 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
            );
            if key_ok && value_ok {
                out.push((k.value.clone(), v.value.clone()));
            }
        }
        out
    }

    /// A Service or container port's name, which kube-proxy writes into its rule comments.
    fn port_name(&mut self, name: &Sp<String>) -> bool {
        self.syntax(
            name,
            "port name",
            syntax::port_name,
            "port names are IANA service names: up to 15 lowercase letters, digits and '-', with at least one letter, such as `http` or `metrics`",
        )
    }

    fn name(&mut self, field: &Option<Sp<String>>, what: &str, dots_allowed: bool) -> Option<Sp<String>> {
        let name = field.clone()?;
        let rule = if dots_allowed {
            syntax::dns_subdomain
        } else {
            syntax::dns_label
        };
        if rule(&name).is_err() {
            self.error(
                name.span,
                format!("`{}` is not a valid {what}", crate::diagnostic::shorten(&name.value)),
                "names are lowercase letters, digits and '-', start and end with a letter or digit, at most 63 characters",
            );
            return None;
        }
        Some(name)
    }

    fn cluster(&mut self, s: &Scenario) -> Option<Cluster> {
        let c = &s.cluster;
        let node_network = c.node_network.clone();
        let pod_network = c.pod_network.clone();
        let service_network = c.service_network.clone();

        let networks: Vec<(&str, Sp<Ipv4Net>)> = [
            ("nodeNetwork", node_network.clone()),
            ("podNetwork", pod_network.clone()),
            ("serviceNetwork", service_network.clone()),
        ]
        .into_iter()
        .filter_map(|(n, v)| v.map(|v| (n, v)))
        .collect();
        for (i, (a_name, a)) in networks.iter().enumerate() {
            for (b_name, b) in &networks[i + 1..] {
                // GKE's classic layout carves the Service range out of the pod network; that is
                // sound as long as no node's podCIDR reaches into it, which `nodes` checks.
                let service_inside_pods =
                    *a_name == "podNetwork" && *b_name == "serviceNetwork" && a.contains(&b.value);
                if overlaps(a, b) && !service_inside_pods {
                    self.error(
                        b.span,
                        format!("{b_name} {} overlaps {a_name} {}", b.value, a.value),
                        format!(
                            "node, pod and Service addresses must come from separate ranges, or a packet's destination is ambiguous; pick a {b_name} outside {}",
                            a.value
                        ),
                    );
                }
            }
        }

        let gateway = match (&c.gateway, &node_network) {
            (Some(g), Some(net)) => {
                if !net.contains(&g.value) {
                    self.error(
                        g.span,
                        format!("gateway {} is outside nodeNetwork {}", g.value, net.value),
                        "the nodes reach their gateway directly, so it must be an address of nodeNetwork",
                    );
                }
                Some(g.value)
            }
            (None, Some(net)) => net.hosts().next(),
            _ => None,
        };

        let name = match &c.name {
            Some(_) => self.name(&c.name, "cluster name", false).map(|n| n.value),
            None => Some("cluster".to_owned()),
        };
        let cluster_domain = c
            .cluster_domain
            .as_ref()
            .filter(|d| {
                self.syntax(
                    d,
                    "clusterDomain",
                    syntax::dns_subdomain,
                    "the cluster domain is a DNS name such as cluster.local",
                )
            })
            .map(|d| d.value.clone())
            .unwrap_or_else(|| "cluster.local".to_owned());
        let hairpin = c
            .hairpin_mode
            .as_ref()
            .map(|h| hairpin_mode(h))
            .unwrap_or(HairpinMode::HairpinVeth);
        let bridge_nf = c.bridge_nf_call_iptables.unwrap_or(true);

        let networks = Networks {
            node_network: node_network.as_ref(),
            pod_network: pod_network.as_ref(),
            service_network: service_network.as_ref(),
        };
        let settings = self.cni_settings(s, node_network.as_ref(), pod_network.as_ref());
        self.node_devices = cni::node_devices(&settings);
        let nodes = self.nodes(s, networks, gateway, (hairpin, bridge_nf));
        self.cni_nodes(s, &settings, gateway);
        let mut pods = self.pods(s, &nodes);
        let mut services = self.services(s, &pods, service_network.as_ref());
        self.external_ips_under(s, settings.kube_proxy);
        self.kubernetes_service(s, &nodes, &mut pods, &mut services, service_network.as_ref());
        self.host_ports(&pods);
        let ingresses = self.ingresses(s, &services);
        let traces = self.traces(s);
        let policies = self.policies(s);
        let used = pods
            .iter()
            .map(|(p, _)| &p.namespace)
            .chain(services.iter().map(|s| &s.namespace))
            .chain(policies.iter().map(|p| &p.namespace));
        let namespaces = self.namespaces(s, used);
        let network_policy = c
            .network_policy
            .as_ref()
            .and_then(|w| crate::model::policy::Enforcer::from_word(w))
            .unwrap_or(crate::model::policy::Enforcer::default_for(settings.cni));

        let non_masquerade_cidrs = match &c.non_masquerade_cidrs {
            Some(list) => list.iter().map(|n| n.value).collect(),
            None => crate::model::DEFAULT_NON_MASQUERADE_CIDRS
                .iter()
                .map(|n| n.parse().expect("literal CIDR"))
                .collect(),
        };

        Some(Cluster {
            name: name?,
            node_network: node_network?.value,
            gateway: gateway?,
            pod_network: pod_network?.value,
            service_network: service_network?.value,
            cni: settings.cni,
            calico: settings.calico,
            node_subnets: settings.node_subnets,
            kube_proxy: settings.kube_proxy,
            cluster_domain,
            non_masquerade_cidrs,
            masq_link_local: c.masq_link_local.unwrap_or(false),
            nodes: fitted(nodes.into_iter().map(|(n, _)| n).collect()),
            pods: fitted(pods.into_iter().map(|(p, _)| p).collect()),
            services: fitted(services),
            ingresses,
            traces,
            network_policy,
            namespaces,
            policies,
            index: Default::default(),
        })
    }

    fn nodes(
        &mut self,
        s: &Scenario,
        networks: Networks<'_>,
        gateway: Option<Ipv4Addr>,
        defaults: (HairpinMode, bool),
    ) -> Vec<(Node, Span)> {
        let Networks {
            node_network,
            pod_network,
            service_network,
        } = networks;
        let (hairpin, bridge_nf) = defaults;
        let mut out: Vec<(Node, Span)> = Vec::new();
        let mut cidrs: Vec<(String, Sp<Ipv4Net>)> = Vec::new();
        let mut names: Seen<String> = Seen::default();
        let mut ips: Seen<Ipv4Addr> = Seen::default();
        for n in &s.nodes {
            let name = self.name(&n.name, "node name", true);
            if let Some(name) = &name
                && let Some(earlier) = names.record(name.value.clone(), &name.value)
            {
                self.error(
                    name.span,
                    if earlier.count == 1 {
                        format!("duplicate node name `{}`", name.value)
                    } else {
                        format!(
                            "duplicate node name `{}` ({} earlier nodes have it)",
                            name.value, earlier.count
                        )
                    },
                    "give each node its own name",
                );
            }
            if let (Some(ip), Some(net)) = (&n.ip, node_network)
                && !net.contains(&ip.value)
            {
                self.error(
                    ip.span,
                    format!("node IP {} is outside nodeNetwork {}", ip.value, net.value),
                    format!("pick an address in {}", net.value),
                );
            }
            if let Some(ip) = &n.ip {
                if Some(ip.value) == gateway {
                    self.error(
                        ip.span,
                        format!("node IP {} is the gateway's address", ip.value),
                        "the gateway is the cloud router; give the node another address",
                    );
                }
                let user = name.as_ref().map(|n| n.value.as_str()).unwrap_or_default();
                if let Some(earlier) = ips.record(ip.value, user) {
                    self.error(
                        ip.span,
                        format!(
                            "node IP {} is already used by {}",
                            ip.value,
                            duplicates::named("node", "nodes", &earlier)
                        ),
                        "every node needs its own address",
                    );
                }
            }
            if let Some(cidr) = &n.pod_cidr {
                if let Some(net) = pod_network
                    && !net.contains(&cidr.value)
                {
                    self.error(
                        cidr.span,
                        format!("podCIDR {} is outside podNetwork {}", cidr.value, net.value),
                        format!("each node's podCIDR is a slice of podNetwork {}", net.value),
                    );
                }
                if cidr.prefix_len() > 30 {
                    self.error(
                        cidr.span,
                        format!("podCIDR {} is too small for pods", cidr.value),
                        "a podCIDR needs room for the bridge's address and at least one pod: use /30 or larger",
                    );
                }
                if let Some(svc) = service_network
                    && overlaps(cidr, svc)
                {
                    self.error(
                        cidr.span,
                        format!("podCIDR {} overlaps serviceNetwork {}", cidr.value, svc.value),
                        "ClusterIPs would be ambiguous with this node's pod addresses; pick a podCIDR outside the service network",
                    );
                }
                cidrs.push((name.as_ref().map(|n| n.value.clone()).unwrap_or_default(), cidr.clone()));
            }
            let routes = self.routes(&n.routes);
            for r in &n.routes {
                self.route_gateway(r, networks.node_network, n.pod_cidr.as_ref());
            }
            let node_hairpin = n.hairpin_mode.as_ref().map(|h| hairpin_mode(h)).unwrap_or(hairpin);
            if let (Some(name), Some(ip), Some(cidr)) = (name, &n.ip, &n.pod_cidr) {
                out.push((
                    Node {
                        name: name.value,
                        ip: ip.value,
                        pod_cidr: cidr.value,
                        hairpin: node_hairpin,
                        bridge_nf_call_iptables: n.bridge_nf_call_iptables.unwrap_or(bridge_nf),
                        extra_routes: routes,
                    },
                    n.span,
                ));
            }
        }
        self.pod_cidr_overlaps(&cidrs);
        out
    }

    fn routes(&mut self, routes: &[spec::RouteSpec]) -> Vec<ExtraRoute> {
        let mut out = Vec::new();
        for r in routes {
            let kind = match r.kind.as_ref().map(|k| k.as_str()) {
                Some("blackhole") => RouteKind::Blackhole,
                Some("unreachable") => RouteKind::Unreachable,
                Some("prohibit") => RouteKind::Prohibit,
                _ => RouteKind::Unicast,
            };
            if kind == RouteKind::Unicast && r.via.is_none() && r.dev.is_none() {
                self.error(
                    r.span,
                    "a unicast route needs `via` or `dev`",
                    "add `via: <gateway IP>` or `dev: <device>`, or set `type: blackhole` to drop the traffic",
                );
                continue;
            }
            if kind != RouteKind::Unicast
                && let Some(via) = r.via.as_ref().map(|v| v.span).or(r.dev.as_ref().map(|d| d.span))
            {
                self.error(
                    via,
                    format!("a {kind:?} route has no gateway or device", kind = kind).to_lowercase(),
                    "remove `via` and `dev`: the route's type alone says what happens to the traffic",
                );
                continue;
            }
            if let Some(dev) = &r.dev
                && !self.node_devices.contains(&dev.as_str())
            {
                self.error(
                    dev.span,
                    format!("no device `{}` on the node", crate::diagnostic::shorten(&dev.value)),
                    match &self.node_devices[2..] {
                        ["cbr0"] => "a node's devices are eth0 (node network), cbr0 (pod bridge) and lo".to_owned(),
                        more => format!(
                            "under this CNI model a node's devices are eth0 (node network), lo{}",
                            more.iter().map(|d| format!(", {d}")).collect::<String>()
                        ),
                    },
                );
                continue;
            }
            let Some(destination) = &r.destination else { continue };
            out.push(ExtraRoute {
                destination: destination.value,
                via: r.via.as_ref().map(|v| v.value),
                dev: r.dev.as_ref().map(|d| d.value.clone()),
                metric: r.metric.unwrap_or(0),
                kind,
                onlink: r.onlink.as_ref().is_some_and(|o| o.value),
                line: r.span.pos.line,
            });
        }
        out
    }
}

/// A list without the room it grew into, for lists kept as long as the cluster: 150,000 pods
/// pushed one by one hold room for 262,144.
pub(super) fn fitted<T>(mut list: Vec<T>) -> Vec<T> {
    list.shrink_to_fit();
    list
}

fn namespace(v: &mut Validator, field: &Option<Sp<String>>) -> Option<String> {
    match field {
        Some(_) => v.name(field, "namespace", false).map(|n| n.value),
        None => Some("default".to_owned()),
    }
}

fn protocol(field: &Option<Sp<String>>) -> Protocol {
    field
        .as_ref()
        .and_then(|p| Protocol::from_word(p))
        .unwrap_or(Protocol::Tcp)
}

fn hairpin_mode(word: &str) -> HairpinMode {
    match word {
        "promiscuous-bridge" => HairpinMode::PromiscuousBridge,
        "none" => HairpinMode::None,
        _ => HairpinMode::HairpinVeth,
    }
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}
