//! Pods and their containers: names, nodes, addresses, ports.

use super::*;

impl Validator {
    pub(super) fn pods(&mut self, s: &Scenario, nodes: &[(Node, Span)]) -> Vec<(Pod, Span)> {
        let mut out: Vec<(Pod, Span)> = Vec::new();
        let mut ips: BTreeMap<Ipv4Addr, String> = BTreeMap::new();
        // The first node of a name wins, as it does when a pod looks for its node.
        let mut node_index: HashMap<&str, usize> = HashMap::new();
        for (i, (n, _)) in nodes.iter().enumerate() {
            node_index.entry(n.name.as_str()).or_insert(i);
        }
        let nodes_in_file: HashSet<&str> = s
            .nodes
            .iter()
            .filter_map(|n| n.name.as_ref())
            .map(|n| n.value.as_str())
            .collect();
        let mut pod_cidr_owner: HashMap<Ipv4Net, usize> = HashMap::new();
        for (i, (n, _)) in nodes.iter().enumerate() {
            pod_cidr_owner.entry(n.pod_cidr).or_insert(i);
        }
        let owner_of = |ip: Ipv4Addr| {
            (0..=32u8)
                .rev()
                .find_map(|len| pod_cidr_owner.get(&Ipv4Net::new(ip, len).ok()?.trunc()).copied())
        };
        let mut names: HashSet<(String, String)> = HashSet::new();
        let known_nodes: Vec<&str> = nodes.iter().map(|(n, _)| n.name.as_str()).collect();
        for p in &s.pods {
            let name = self.name(&p.name, "pod name", true);
            let namespace = namespace(self, &p.namespace);
            if let (Some(name), Some(ns)) = (&name, &namespace)
                && !names.insert((ns.clone(), name.value.clone()))
            {
                self.error(
                    name.span,
                    format!("duplicate pod `{ns}/{}`", name.value),
                    "pod names are unique within a namespace",
                );
            }
            let node = match &p.node {
                Some(n) => match node_index.get(n.value.as_str()) {
                    Some(&i) => Some(i),
                    // A node that is in the file but had problems of its own was reported
                    // already; saying it "does not exist" would only mislead.
                    None if nodes_in_file.contains(n.value.as_str()) => None,
                    None => {
                        let help = if self.suggestions < SUGGESTIONS {
                            self.suggestions += 1;
                            crate::input::decode::did_you_mean(&n.value, &known_nodes, "the nodes are")
                        } else {
                            "a pod's node must be one of the nodes listed under `nodes:`".to_owned()
                        };
                        self.error(
                            n.span,
                            format!(
                                "pod is on node `{}`, which does not exist",
                                crate::diagnostic::shorten(&n.value)
                            ),
                            help,
                        );
                        None
                    }
                },
                None => None,
            };
            let ip = match (node, &p.ip, p.host_network) {
                (Some(i), ip, true) => {
                    let node_ip = nodes[i].0.ip;
                    if let Some(ip) = ip
                        && ip.value != node_ip
                    {
                        self.error(
                            ip.span,
                            format!("hostNetwork pod has IP {}, but its node's IP is {node_ip}", ip.value),
                            "a hostNetwork pod shares its node's network namespace and address: remove `ip`",
                        );
                    }
                    Some(node_ip)
                }
                (Some(i), Some(ip), false) => {
                    let cidr = nodes[i].0.pod_cidr;
                    if !cidr.contains(&ip.value) {
                        let owner = owner_of(ip.value).map(|o| &nodes[o]);
                        let help = match owner {
                            Some((o, _)) => format!(
                                "{} belongs to node `{}`'s podCIDR {}; the CNI gives pods on {} addresses from {cidr}",
                                ip.value, o.name, o.pod_cidr, nodes[i].0.name
                            ),
                            None => format!("pods on {} get addresses from {cidr}", nodes[i].0.name),
                        };
                        self.error(
                            ip.span,
                            format!("pod IP {} is outside its node's podCIDR {cidr}", ip.value),
                            help,
                        );
                    } else if ip.value == cidr.network() || ip.value == cidr.broadcast() {
                        self.error(
                            ip.span,
                            format!(
                                "pod IP {} is the {} address of {cidr}",
                                ip.value,
                                if ip.value == cidr.network() {
                                    "network"
                                } else {
                                    "broadcast"
                                }
                            ),
                            "pick an address between the bridge's and the broadcast address",
                        );
                    } else if Some(ip.value) == cidr.hosts().next() {
                        self.error(
                            ip.span,
                            format!("pod IP {} is the node bridge's address", ip.value),
                            format!("cbr0 holds the first address of {cidr}, the pods' gateway; pick another"),
                        );
                    } else if let Some(other) = ips.get(&ip.value) {
                        self.error(
                            ip.span,
                            format!("pod IP {} is already used by pod `{other}`", ip.value),
                            "every pod needs its own address",
                        );
                    }
                    Some(ip.value)
                }
                _ => None,
            };
            if let (Some(ip), Some(n), Some(ns), false) = (ip, &name, &namespace, p.host_network) {
                ips.entry(ip).or_insert_with(|| format!("{ns}/{}", n.value));
            }
            let containers = self.containers(&p.containers);
            let labels = self.labels(&p.labels);
            if let (Some(name), Some(namespace), Some(node), Some(ip)) = (name, namespace, node, ip) {
                out.push((
                    Pod {
                        namespace,
                        name: name.value,
                        node,
                        ip,
                        host_network: p.host_network,
                        labels,
                        containers,
                        ready: p.conditions.ready.as_ref().is_none_or(|r| r.value),
                        terminating: p.conditions.terminating.as_ref().is_some_and(|t| t.value),
                    },
                    p.span,
                ));
            }
        }
        out
    }

    pub(super) fn containers(&mut self, specs: &[spec::ContainerSpec]) -> Vec<Container> {
        let mut out: Vec<Container> = Vec::new();
        let mut bound: BTreeMap<(u16, Protocol), String> = BTreeMap::new();
        let mut port_names: BTreeSet<String> = BTreeSet::new();
        let mut names: HashSet<String> = HashSet::new();
        for c in specs {
            let name = self.name(&c.name, "container name", false);
            if let Some(n) = &name
                && !names.insert(n.value.clone())
            {
                self.error(
                    n.span,
                    format!("duplicate container `{}`", n.value),
                    "container names are unique within a pod",
                );
            }
            let mut ports = Vec::new();
            for p in &c.ports {
                let Some(port) = &p.container_port else { continue };
                let protocol = protocol(&p.protocol);
                let owner = name.as_ref().map(|n| n.value.clone()).unwrap_or_default();
                if let Some(other) = bound.insert((port.value, protocol), owner.clone()) {
                    self.error(
                        port.span,
                        format!("port {}/{protocol} is declared by container `{other}` too", port.value),
                        "a pod's containers share one network namespace, so only one of them can bind a port; give one container another port",
                    );
                }
                if let Some(pn) = &p.name
                    && self.port_name(pn)
                    && !port_names.insert(pn.value.clone())
                {
                    self.error(
                        pn.span,
                        format!(
                            "duplicate port name `{}` in the pod",
                            crate::diagnostic::shorten(&pn.value)
                        ),
                        "port names are unique within a pod",
                    );
                }
                ports.push(ContainerPort {
                    name: p.name.as_ref().map(|n| n.value.clone()),
                    port: port.value,
                    protocol,
                });
            }
            if let Some(name) = name {
                out.push(Container {
                    name: name.value,
                    ports: fitted(ports),
                });
            }
        }
        fitted(out)
    }
}
