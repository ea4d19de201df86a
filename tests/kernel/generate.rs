//! Random clusters and flows from a fixed seed, so every run tries the same cases: pods on
//! nodes, Services with ports and target ports (some with no endpoints, some pointing at ports
//! nobody listens on), per-node bridge settings, and extra routes — blackholes, unreachable and
//! prohibit routes, more specific routes with metrics, and routing loops.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use k8snet::net::Protocol;
use k8snet::sim::netfilter::BranchChoice;

use crate::run::FlowSpec;

/// splitmix64: small, fast, and the same on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.next() as usize % items.len()]
    }
}

pub struct Generated {
    pub name: String,
    pub yaml: String,
    pub flows: Vec<FlowSpec>,
}

struct Node {
    name: String,
    ip: Ipv4Addr,
    /// The third octet of the node's 10.244.N.0/24.
    subnet: u8,
}

struct Pod {
    name: String,
    node: usize,
    ip: Option<Ipv4Addr>,
    app: &'static str,
    ports: Vec<(u16, Protocol)>,
}

struct Service {
    name: String,
    app: &'static str,
    /// (port, targetPort, protocol)
    ports: Vec<(u16, u16, Protocol)>,
}

const APPS: &[&str] = &["a", "b", "c"];
const CONTAINER_PORTS: &[(u16, Protocol)] = &[
    (80, Protocol::Tcp),
    (8080, Protocol::Tcp),
    (9000, Protocol::Tcp),
    (5353, Protocol::Udp),
];
/// Ports nobody listens on.
const UNUSED_PORT: u16 = 7777;

fn proto_word(p: Protocol) -> &'static str {
    match p {
        Protocol::Udp => "UDP",
        Protocol::Sctp => "SCTP",
        Protocol::Tcp => "TCP",
        Protocol::Icmp | Protocol::Ipip => unreachable!("no port has protocol ICMP or IPIP"),
    }
}

pub fn scenarios(seed: u64, count: usize, flows_each: usize) -> Vec<Generated> {
    (0..count)
        .map(|k| {
            scenario(
                &mut Rng::new(seed.wrapping_add(k as u64).wrapping_mul(0x2545_f491_4f6c_dd1d)),
                k,
                flows_each,
            )
        })
        .collect()
}

/// Every CNI model this kernel can build, each as its `cluster:` lines.
const CNIS: &[&str] = &[
    "  cni: bridge\n",
    "  cni: flannel-host-gw\n",
    "  cni: flannel-vxlan\n",
    "  cni: calico\n  encapsulation: None\n",
    "  cni: calico\n  encapsulation: VXLAN\n",
    "  cni: cilium\n",
];

/// A cluster's CNI, drawn at random from its name with a generator of its own, so that the
/// draws of everything else stay as they were.
fn cni_lines(name: &str) -> &'static str {
    let seed = name
        .bytes()
        .fold(0x636e_6900u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let mut rng = Rng::new(seed);
    rng.next();
    CNIS[rng.range(0, CNIS.len() as u64 - 1) as usize]
}

fn scenario(rng: &mut Rng, k: usize, flows_each: usize) -> Generated {
    let name = format!("gen-{k}");
    let node_net = *rng.pick(&[[10, 100, 0], [172, 20, 0], [192, 168, 10]]);
    let node_ip = |i: u8| Ipv4Addr::new(node_net[0], node_net[1], node_net[2], 11 + i);
    let gateway = Ipv4Addr::new(node_net[0], node_net[1], node_net[2], 1);
    let nodes: Vec<Node> = (0..rng.range(2, 4) as u8)
        .map(|i| Node {
            name: format!("node-{}", i + 1),
            ip: node_ip(i),
            subnet: i + 1,
        })
        .collect();

    let mut pods: Vec<Pod> = Vec::new();
    let mut used: Vec<Ipv4Addr> = Vec::new();
    let host_network = rng.chance(30).then(|| rng.range(0, nodes.len() as u64 - 1) as usize);
    for i in 0..rng.range(3, 8) {
        let node = rng.range(0, nodes.len() as u64 - 1) as usize;
        let ip = loop {
            let ip = Ipv4Addr::new(10, 244, nodes[node].subnet, rng.range(2, 254) as u8);
            if !used.contains(&ip) {
                used.push(ip);
                break ip;
            }
        };
        let mut ports: Vec<(u16, Protocol)> = Vec::new();
        if rng.chance(70) {
            for _ in 0..rng.range(1, 2) {
                let p = *rng.pick(CONTAINER_PORTS);
                if !ports.contains(&p) {
                    ports.push(p);
                }
            }
        }
        pods.push(Pod {
            name: format!("p-{i}"),
            node,
            ip: Some(ip),
            app: APPS[rng.range(0, APPS.len() as u64 - 1) as usize],
            ports,
        });
    }
    if let Some(node) = host_network {
        pods.push(Pod {
            name: "agent".into(),
            node,
            ip: None,
            app: "agent",
            ports: vec![(9100, Protocol::Tcp)],
        });
    }

    let mut services: Vec<Service> = Vec::new();
    for i in 0..rng.range(1, 3) {
        let app = *rng.pick(APPS);
        let mut ports: Vec<(u16, u16, Protocol)> = Vec::new();
        for _ in 0..rng.range(1, 2) {
            let listened: Vec<(u16, Protocol)> = pods
                .iter()
                .filter(|p| p.app == app)
                .flat_map(|p| p.ports.clone())
                .collect();
            let (target, protocol) = if !listened.is_empty() && rng.chance(75) {
                *rng.pick(&listened)
            } else {
                (UNUSED_PORT, Protocol::Tcp)
            };
            let port = *rng.pick(&[80, 443, 8080, 53]);
            if !ports.iter().any(|(p, _, pr)| *p == port && *pr == protocol) {
                ports.push((port, target, protocol));
            }
        }
        services.push(Service {
            name: format!("svc-{i}"),
            app,
            ports,
        });
    }

    let mut yaml = write_yaml(rng, &name, node_net, gateway, &nodes, &pods, &services);
    // The kube-proxy mode is drawn from a generator of its own, so every other draw, and so
    // every other case, stays as it was.
    if Rng::new(0x6e66_7461_626c_6573 ^ k as u64).chance(50) {
        yaml = yaml.replacen("cluster:\n", "cluster:\n  kubeProxy: nftables\n", 1);
    }
    // Every sixth flow is a ping to where the flow was headed, chosen by position so the
    // random draws, and so every other flow, stay as they were.
    let flows = (0..flows_each)
        .map(|j| {
            let f = flow(rng, &nodes, &pods, &services);
            if j % 6 == 5 { ping(f) } else { f }
        })
        .collect();
    Generated { name, yaml, flows }
}

#[allow(clippy::too_many_arguments)]
fn write_yaml(
    rng: &mut Rng,
    name: &str,
    net: [u8; 3],
    gateway: Ipv4Addr,
    nodes: &[Node],
    pods: &[Pod],
    services: &[Service],
) -> String {
    let mut y = String::new();
    let _ = writeln!(
        y,
        "cluster:\n  name: {name}\n  nodeNetwork: {}.{}.{}.0/24\n  gateway: {gateway}\n  podNetwork: 10.244.0.0/16\n  serviceNetwork: 10.96.0.0/16\n{}nodes:",
        net[0],
        net[1],
        net[2],
        cni_lines(name)
    );
    // Routing loops need two nodes pointing at each other.
    let loop_pair = (nodes.len() >= 2 && rng.chance(30)).then_some((0, 1));
    for (i, n) in nodes.iter().enumerate() {
        let hairpin = rng.pick(&["hairpin-veth", "hairpin-veth", "promiscuous-bridge", "none"]);
        let nf = rng.chance(75);
        let _ = writeln!(
            y,
            "  - name: {}\n    ip: {}\n    podCIDR: 10.244.{}.0/24\n    hairpinMode: {hairpin}\n    bridgeNfCallIptables: {nf}\n    routes:",
            n.name, n.ip, n.subnet
        );
        if let Some((a, b)) = loop_pair
            && (i == a || i == b)
        {
            let other = &nodes[if i == a { b } else { a }];
            let _ = writeln!(y, "      - {{destination: 10.99.0.0/16, via: {}}}", other.ip);
        }
        for _ in 0..rng.range(0, 2) {
            let other = rng.pick(nodes);
            let half = rng.range(0, 1) * 128;
            let quarter = rng.range(0, 3) * 64;
            let via = rng.pick(nodes).ip;
            let metric = rng.range(0, 3) * 50;
            let route = match rng.range(0, 5) {
                0 => format!("{{destination: 10.244.{}.0/24, type: blackhole}}", other.subnet),
                1 => format!("{{destination: 10.244.{}.{half}/25, type: blackhole}}", other.subnet),
                2 => format!(
                    "{{destination: 10.244.{}.{half}/25, via: {via}, metric: {metric}}}",
                    other.subnet
                ),
                3 => format!(
                    "{{destination: 10.244.{}.{quarter}/26, type: {}}}",
                    other.subnet,
                    rng.pick(&["unreachable", "prohibit"])
                ),
                4 => format!(
                    "{{destination: 10.244.{}.0/24, via: {via}, metric: {}}}",
                    other.subnet,
                    metric + 10
                ),
                _ => format!(
                    "{{destination: 10.244.{}.{quarter}/26, via: {via}, metric: {metric}}}",
                    other.subnet
                ),
            };
            let _ = writeln!(y, "      - {route}");
        }
    }
    let _ = writeln!(y, "pods:");
    for p in pods {
        let _ = writeln!(y, "  - name: {}\n    node: {}", p.name, nodes[p.node].name);
        match p.ip {
            Some(ip) => {
                let _ = writeln!(y, "    ip: {ip}");
            }
            None => {
                let _ = writeln!(y, "    hostNetwork: true");
            }
        }
        let ports: Vec<String> = p
            .ports
            .iter()
            .map(|(port, proto)| format!("{{containerPort: {port}, protocol: {}}}", proto_word(*proto)))
            .collect();
        let _ = writeln!(
            y,
            "    labels: {{app: {}}}\n    containers: [{{name: c, ports: [{}]}}]",
            p.app,
            ports.join(", ")
        );
    }
    let _ = writeln!(y, "services:");
    for (i, s) in services.iter().enumerate() {
        let ports: Vec<String> = s
            .ports
            .iter()
            .enumerate()
            .map(|(j, (port, target, proto))| {
                format!(
                    "{{name: p{j}, port: {port}, targetPort: {target}, protocol: {}}}",
                    proto_word(*proto)
                )
            })
            .collect();
        let affinity = if rng.chance(20) {
            ", sessionAffinity: ClientIP"
        } else {
            ""
        };
        let _ = writeln!(
            y,
            "  - {{name: {}, clusterIP: 10.96.0.{}, selector: {{app: {}}}, ports: [{}]{affinity}}}",
            s.name,
            10 + i,
            s.app,
            ports.join(", ")
        );
    }
    y
}

/// The same flow as an ICMP echo: no port, and no endpoint to pin, since kube-proxy translates
/// no ICMP.
fn ping(f: FlowSpec) -> FlowSpec {
    let to = match f.to.rsplit_once(':') {
        Some((addr, port)) if port.parse::<u16>().is_ok() => addr.to_owned(),
        _ => f.to.clone(),
    };
    FlowSpec {
        protocol: Some(Protocol::Icmp),
        port: None,
        ..FlowSpec::new(&f.from, &to)
    }
}

fn flow(rng: &mut Rng, nodes: &[Node], pods: &[Pod], services: &[Service]) -> FlowSpec {
    let clients: Vec<&Pod> = pods.iter().filter(|p| p.ip.is_some()).collect();
    let from = if rng.chance(15) {
        format!("node/{}", rng.pick(nodes).name)
    } else {
        rng.pick(&clients).name.clone()
    };
    let mut f = FlowSpec::new(&from, "");
    match rng.range(0, 9) {
        0..=3 => {
            let s = rng.pick(services);
            let (port, _, protocol) = *rng.pick(&s.ports);
            f.to = format!("svc/{}", s.name);
            f.port = Some(port);
            f.protocol = Some(protocol);
            let endpoints: Vec<Ipv4Addr> = pods
                .iter()
                .filter(|p| p.app == s.app)
                .map(|p| p.ip.unwrap_or(nodes[p.node].ip))
                .collect();
            if !endpoints.is_empty() {
                f.choice = BranchChoice::pinned(vec![*rng.pick(&endpoints)]);
            }
        }
        4..=6 => {
            let p = rng.pick(&clients);
            f.to = format!("pod/{}", p.name);
            let (port, protocol) = if !p.ports.is_empty() && rng.chance(80) {
                *rng.pick(&p.ports)
            } else {
                (UNUSED_PORT, Protocol::Tcp)
            };
            f.port = Some(port);
            f.protocol = Some(protocol);
        }
        7 => {
            let n = rng.pick(nodes);
            f.to = format!("node/{}:{}", n.name, rng.pick(&[9100, UNUSED_PORT]));
        }
        8 => {
            let n = rng.pick(nodes);
            // An address in a node's podCIDR that no pod holds.
            f.to = format!("10.244.{}.{}:80", n.subnet, rng.pick(&[100, 200, 250]));
        }
        _ => {
            f.to = rng.pick(&["203.0.113.7:80", "10.99.1.1:80"]).to_string();
        }
    }
    f
}
