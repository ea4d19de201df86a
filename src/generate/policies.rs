//! Small random clusters under NetworkPolicy, from a seed: namespaces and pods with random
//! labels, a named port that means another number on some pods, and policies with random
//! selectors (matchLabels and every matchExpressions operator), policy types, peers (pod,
//! namespace, both in one item, ipBlock with except) and ports (numbers, names, ranges,
//! protocols), with flows between the pods to try. The kernel suite builds each for real and
//! checks that every flow ends where the simulator says.

use std::fmt::Write as _;

use crate::net::Protocol;

/// splitmix64: the same numbers on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// One flow to try: client pod, destination (`pod/NS/NAME` or `NS/svc/NAME`), port, protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub from: String,
    pub to: String,
    pub port: u16,
    pub protocol: Protocol,
}

pub struct Lab {
    pub name: String,
    pub yaml: String,
    pub flows: Vec<Flow>,
}

const NAMESPACES: &[&str] = &["ns-x", "ns-y", "ns-z"];
const APPS: &[&str] = &["a", "b", "c"];
const TEAMS: &[&str] = &["red", "blue"];
/// What every pod listens on: `http` is 80 on some pods and 8080 on others.
const UDP_PORT: u16 = 53;

struct Pod {
    namespace: &'static str,
    name: String,
    node: usize,
    ip: String,
    app: &'static str,
    tier: Option<&'static str>,
    http: u16,
}

fn selector(rng: &mut Rng, out: &mut String, indent: &str) {
    match rng.below(6) {
        0 => out.push_str("{}\n"),
        1 | 2 => {
            let _ = writeln!(out, "{{matchLabels: {{app: {}}}}}", rng.pick(APPS));
        }
        _ => {
            let key = if rng.chance(50) { "app" } else { "tier" };
            let values = if key == "app" { APPS } else { &["web", "db"][..] };
            let op = *rng.pick(&["In", "NotIn", "Exists", "DoesNotExist"]);
            let _ = writeln!(out, "\n{indent}  matchExpressions:");
            match op {
                "In" | "NotIn" => {
                    let _ = writeln!(
                        out,
                        "{indent}    - {{key: {key}, operator: {op}, values: [{}]}}",
                        rng.pick(values)
                    );
                }
                _ => {
                    let _ = writeln!(out, "{indent}    - {{key: {key}, operator: {op}}}");
                }
            }
        }
    }
}

fn namespace_selector(rng: &mut Rng) -> String {
    match rng.below(3) {
        0 => "{}".to_owned(),
        1 => format!("{{matchLabels: {{team: {}}}}}", rng.pick(TEAMS)),
        _ => format!(
            "{{matchLabels: {{kubernetes.io/metadata.name: {}}}}}",
            rng.pick(NAMESPACES)
        ),
    }
}

fn peers(rng: &mut Rng, out: &mut String, key: &str, pods: &[Pod]) {
    let _ = writeln!(out, "          {key}:");
    for _ in 0..1 + rng.below(2) {
        match rng.below(4) {
            0 => {
                let _ = write!(out, "            - podSelector: ");
                selector(rng, out, "              ");
            }
            1 => {
                let _ = writeln!(out, "            - namespaceSelector: {}", namespace_selector(rng));
            }
            2 => {
                let _ = writeln!(out, "            - namespaceSelector: {}", namespace_selector(rng));
                let _ = write!(out, "              podSelector: ");
                selector(rng, out, "              ");
            }
            _ => {
                let node = rng.below(2) + 1;
                let except = if rng.chance(50) {
                    let p = rng.pick(pods);
                    format!(", except: [{}/32]", p.ip)
                } else {
                    String::new()
                };
                let cidr = if rng.chance(50) {
                    "10.0.0.0/14".to_owned()
                } else {
                    format!("10.0.{node}.0/24")
                };
                let except = if cidr.starts_with("10.0.0.0") || except.contains(&format!("10.0.{node}.")) {
                    except
                } else {
                    String::new()
                };
                let _ = writeln!(out, "            - ipBlock: {{cidr: {cidr}{except}}}");
            }
        }
    }
}

fn ports(rng: &mut Rng, out: &mut String) {
    if rng.chance(35) {
        return;
    }
    let _ = writeln!(out, "          ports:");
    for _ in 0..1 + rng.below(2) {
        let port = match rng.below(6) {
            0 => "{port: 80}".to_owned(),
            1 => "{port: http}".to_owned(),
            2 => "{port: 80, endPort: 81}".to_owned(),
            3 => format!("{{port: {UDP_PORT}, protocol: UDP}}"),
            4 => "{protocol: UDP}".to_owned(),
            _ => "{port: 8080}".to_owned(),
        };
        let _ = writeln!(out, "            - {port}");
    }
}

fn lab(rng: &mut Rng, index: usize, flows_each: usize) -> Lab {
    let name = format!("netpol-gen-{}", index + 1);
    let mut pods = Vec::new();
    let mut next_host = [2u8, 2u8];
    for i in 0..6 + rng.below(3) {
        let node = rng.below(2);
        let ip = format!("10.0.{}.{}", node + 1, next_host[node]);
        next_host[node] += 1;
        let namespace = *rng.pick::<&str>(NAMESPACES);
        let app = *rng.pick::<&str>(APPS);
        pods.push(Pod {
            namespace,
            name: format!("p{}", i + 1),
            node,
            ip,
            app,
            tier: rng.chance(50).then(|| *rng.pick(&["web", "db"])),
            http: if rng.chance(50) { 80 } else { 8080 },
        });
    }
    let mut y = String::new();
    let _ = writeln!(
        y,
        "# Generated: random labels, selectors and NetworkPolicies, enforced by kube-router.\ncluster: {{name: {name}, nodeNetwork: 10.100.0.0/24, gateway: 10.100.0.1, podNetwork: 10.0.0.0/14, serviceNetwork: 10.3.240.0/20, networkPolicy: kube-router}}\nnodes:\n  - {{name: node-1, ip: 10.100.0.2, podCIDR: 10.0.1.0/24}}\n  - {{name: node-2, ip: 10.100.0.3, podCIDR: 10.0.2.0/24}}\nnamespaces:"
    );
    for ns in NAMESPACES {
        let _ = writeln!(y, "  - {{name: {ns}, labels: {{team: {}}}}}", rng.pick(TEAMS));
    }
    y.push_str("pods:\n");
    for p in &pods {
        let tier = p.tier.map(|t| format!(", tier: {t}")).unwrap_or_default();
        let mut listen = vec![format!("{{name: http, containerPort: {}}}", p.http)];
        listen.push(format!("{{containerPort: {}}}", if p.http == 80 { 8080 } else { 80 }));
        listen.push("{containerPort: 81}".to_owned());
        listen.push(format!("{{name: dns, containerPort: {UDP_PORT}, protocol: UDP}}"));
        let _ = writeln!(
            y,
            "  - {{name: {}, namespace: {}, node: node-{}, ip: {}, labels: {{app: {}{tier}}}, containers: [{{name: c, ports: [{}]}}]}}",
            p.name,
            p.namespace,
            p.node + 1,
            p.ip,
            p.app,
            listen.join(", ")
        );
    }
    y.push_str("networkPolicies:\n");
    for i in 0..2 + rng.below(3) {
        let _ = writeln!(
            y,
            "  - name: np-{}\n    namespace: {}\n    spec:",
            i + 1,
            rng.pick(NAMESPACES)
        );
        let _ = write!(y, "      podSelector: ");
        selector(rng, &mut y, "      ");
        let (ingress, egress) = match rng.below(4) {
            0 => (true, false),
            1 => (false, true),
            _ => (true, true),
        };
        let types: Vec<&str> = [(ingress, "Ingress"), (egress, "Egress")]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, t)| *t)
            .collect();
        let _ = writeln!(y, "      policyTypes: [{}]", types.join(", "));
        for (on, key, peer_key) in [(ingress, "ingress", "from"), (egress, "egress", "to")] {
            if !on {
                continue;
            }
            let rules = rng.below(3);
            if rules == 0 {
                continue;
            }
            let _ = writeln!(y, "      {key}:");
            for _ in 0..rules {
                y.push_str("        - ");
                let mut rule = String::new();
                if rng.chance(75) {
                    peers(rng, &mut rule, peer_key, &pods);
                }
                ports(rng, &mut rule);
                if rule.is_empty() {
                    y.push_str("{}\n");
                } else {
                    y.push_str(rule.trim_start());
                }
            }
        }
    }
    let mut flows = Vec::new();
    for _ in 0..flows_each {
        let from = rng.below(pods.len());
        let mut to = rng.below(pods.len());
        if to == from {
            to = (to + 1) % pods.len();
        }
        let (port, protocol) = *rng.pick(&[
            (80, Protocol::Tcp),
            (8080, Protocol::Tcp),
            (81, Protocol::Tcp),
            (UDP_PORT, Protocol::Udp),
        ]);
        flows.push(Flow {
            from: format!("{}/{}", pods[from].namespace, pods[from].name),
            to: format!("pod/{}/{}", pods[to].namespace, pods[to].name),
            port,
            protocol,
        });
    }
    Lab { name, yaml: y, flows }
}

/// `count` labs of `flows_each` flows each, the same for the same seed.
pub fn labs(seed: u64, count: usize, flows_each: usize) -> Vec<Lab> {
    let mut rng = Rng(seed);
    (0..count).map(|i| lab(&mut rng, i, flows_each)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{Source, parse};

    #[test]
    fn every_generated_lab_is_a_valid_scenario() {
        for lab in labs(7, 40, 5) {
            let (spec, problems) = parse(&Source {
                name: lab.name.clone(),
                text: lab.yaml.clone(),
            })
            .unwrap_or_else(|d| panic!("{}: {d:?}\n{}", lab.name, lab.yaml));
            assert!(problems.is_empty(), "{}: {problems:?}\n{}", lab.name, lab.yaml);
            let built = crate::model::build(&spec).unwrap_or_else(|d| panic!("{}: {d:?}\n{}", lab.name, lab.yaml));
            assert!(!built.cluster.policies.is_empty());
        }
    }
}
