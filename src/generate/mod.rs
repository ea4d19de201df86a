//! A cluster of any size in the scenario format, from a few numbers: the same options give the
//! same bytes, and the layout is fixed so a test can say which node holds which pod and address
//! without reading the file back.
//!
//! The layout (the same for every CNI model): node `i` (from 0) is `node-{i+1}` at `172.16.0.0 + 2 + i` with podCIDR
//! `10.{i / 256}.{i % 256}.0/24`; its pod `j` is `pod-{i+1}-{j+1}` at `.{j + 2}` of that /24
//! (`.1` is the bridge). Pods are numbered across the cluster node by node, and pod number `g`
//! is an endpoint of Service number `g % services`, so each node's pods go round-robin over the
//! Services and each Service's endpoints spread over many nodes. Service `s` is `svc-{s+1}` at
//! `172.20.0.0 + 10 + s`; the first `node_ports` Services are NodePort and the next
//! `load_balancers` LoadBalancer (`nodePort` 30000 + s, `loadBalancerIP` 198.18.0.0 + 1 + s).

pub mod kubectl;
pub mod policies;
mod write;

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::model::{Cni, HairpinMode, KubeProxyMode, TrafficPolicy};

pub use write::{Format, queries, scenario};

/// Where every generated address comes from. Sized for well past Kubernetes' limits (5,000
/// nodes, 150,000 pods, 10,000 Services): 65,536 node /24s, 65,000 Services.
pub const NODE_NETWORK: &str = "172.16.0.0/16";
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 1);
pub const POD_NETWORK: &str = "10.0.0.0/8";
pub const SERVICE_NETWORK: &str = "172.20.0.0/16";

pub const MAX_NODES: u32 = 65_000;
/// A /24 holds 253 pods: its network and broadcast addresses and the bridge's are taken.
pub const MAX_PODS_PER_NODE: u32 = 253;
pub const MAX_SERVICES: u32 = 65_000;
/// NodePort and LoadBalancer Services each take one port of 30000-32767.
pub const MAX_NODE_PORTS: u32 = 2_768;
pub const FIRST_NODE_PORT: u32 = 30_000;

/// Every pod listens here, and every Service sends its port 80 here.
pub const CONTAINER_PORT: u16 = 8080;
pub const SERVICE_PORT: u16 = 80;

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub nodes: u32,
    pub pods_per_node: u32,
    pub services_per_node: u32,
    /// Picks the trace cases and queries; the layout does not depend on it.
    pub seed: u64,
    pub cni: Cni,
    pub kube_proxy: KubeProxyMode,
    pub hairpin_mode: HairpinMode,
    pub bridge_nf_call_iptables: bool,
    pub node_ports: u32,
    pub load_balancers: u32,
    pub external_traffic_policy: TrafficPolicy,
    pub internal_traffic_policy: TrafficPolicy,
    pub client_ip_affinity: bool,
    /// How many `traces:` to write, each expecting `delivered`.
    pub traces: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            nodes: 3,
            pods_per_node: 30,
            services_per_node: 2,
            seed: 1,
            cni: Cni::Bridge,
            kube_proxy: KubeProxyMode::Iptables,
            hairpin_mode: HairpinMode::HairpinVeth,
            bridge_nf_call_iptables: true,
            node_ports: 0,
            load_balancers: 0,
            external_traffic_policy: TrafficPolicy::Cluster,
            internal_traffic_policy: TrafficPolicy::Cluster,
            client_ip_affinity: false,
            traces: 0,
        }
    }
}

/// A pod by its node and its place on the node, both from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodAt {
    pub node: u32,
    pub index: u32,
}

/// What a generated trace case or query asks for. Every one is expected to be delivered: each
/// crosses from one node to another (a same-node Service reply needs bridge netfilter, and a
/// pod reaching itself needs hairpin mode, which the options may turn off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// The client pod, and the Service it dials on its ClusterIP.
    ToService { from: PodAt, service: u32 },
    /// The client pod, and the pod it dials on its container port.
    ToPod { from: PodAt, to: PodAt },
}

/// A checked set of options: every address and port the layout hands out exists.
#[derive(Debug, Clone)]
pub struct Plan {
    options: Options,
}

impl Plan {
    pub fn new(options: Options) -> Result<Plan, String> {
        let o = &options;
        if o.nodes == 0 || o.nodes > MAX_NODES {
            return Err(format!("--nodes must be 1 to {MAX_NODES}, not {}", o.nodes));
        }
        if o.pods_per_node > MAX_PODS_PER_NODE {
            return Err(format!(
                "--pods-per-node must be at most {MAX_PODS_PER_NODE} (a node's /24 holds no more), not {}",
                o.pods_per_node
            ));
        }
        if o.kube_proxy == KubeProxyMode::None && o.cni != Cni::Cilium {
            return Err("--kube-proxy none needs --cni cilium: only Cilium replaces kube-proxy".into());
        }
        if o.services_per_node > o.pods_per_node {
            return Err(format!(
                "--services-per-node ({}) must not exceed --pods-per-node ({}): every Service needs an endpoint",
                o.services_per_node, o.pods_per_node
            ));
        }
        let services = u64::from(o.nodes) * u64::from(o.services_per_node);
        if services > u64::from(MAX_SERVICES) {
            return Err(format!(
                "{services} Services is more than the Service network holds ({MAX_SERVICES})"
            ));
        }
        let external = u64::from(o.node_ports) + u64::from(o.load_balancers);
        if external > u64::from(MAX_NODE_PORTS) {
            return Err(format!(
                "--node-ports plus --load-balancers must be at most {MAX_NODE_PORTS} (the NodePort range 30000-32767), not {external}"
            ));
        }
        if external > services {
            return Err(format!(
                "--node-ports plus --load-balancers ({external}) is more than the cluster's {services} Services"
            ));
        }
        if o.traces > 0 && o.nodes < 2 {
            return Err("--traces needs at least 2 nodes: every case crosses from one node to another".into());
        }
        if o.traces > 0 && o.services_per_node == 0 {
            return Err("--traces needs pods and Services (--pods-per-node and --services-per-node above 0)".into());
        }
        Ok(Plan { options })
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    pub fn services(&self) -> u32 {
        self.options.nodes * self.options.services_per_node
    }

    pub fn node_name(&self, node: u32) -> String {
        format!("node-{}", node + 1)
    }

    pub fn node_ip(&self, node: u32) -> Ipv4Addr {
        offset(Ipv4Addr::new(172, 16, 0, 0), 2 + node)
    }

    pub fn pod_cidr(&self, node: u32) -> Ipv4Net {
        let [hi, lo] = [(node >> 8) as u8, node as u8];
        Ipv4Net::new(Ipv4Addr::new(10, hi, lo, 0), 24).expect("24 is a valid prefix length")
    }

    /// The `cbr0` address of the node: its pods' gateway.
    pub fn bridge_ip(&self, node: u32) -> Ipv4Addr {
        offset(self.pod_cidr(node).network(), 1)
    }

    pub fn pod_name(&self, pod: PodAt) -> String {
        format!("pod-{}-{}", pod.node + 1, pod.index + 1)
    }

    pub fn pod_ip(&self, pod: PodAt) -> Ipv4Addr {
        offset(self.pod_cidr(pod.node).network(), 2 + pod.index)
    }

    /// The Service the pod is an endpoint of.
    pub fn service_of(&self, pod: PodAt) -> u32 {
        let global = u64::from(pod.node) * u64::from(self.options.pods_per_node) + u64::from(pod.index);
        (global % u64::from(self.services())) as u32
    }

    pub fn service_name(&self, service: u32) -> String {
        format!("svc-{}", service + 1)
    }

    pub fn cluster_ip(&self, service: u32) -> Ipv4Addr {
        offset(Ipv4Addr::new(172, 20, 0, 0), 10 + service)
    }

    pub fn service_type(&self, service: u32) -> &'static str {
        let o = &self.options;
        if service < o.node_ports {
            "NodePort"
        } else if service < o.node_ports + o.load_balancers {
            "LoadBalancer"
        } else {
            "ClusterIP"
        }
    }

    pub fn node_port(&self, service: u32) -> Option<u16> {
        (self.service_type(service) != "ClusterIP").then(|| (FIRST_NODE_PORT + service) as u16)
    }

    pub fn load_balancer_ip(&self, service: u32) -> Option<Ipv4Addr> {
        (self.service_type(service) == "LoadBalancer").then(|| offset(Ipv4Addr::new(198, 18, 0, 0), 1 + service))
    }

    /// The Service's endpoint pods, in the order pods are numbered.
    pub fn endpoints(&self, service: u32) -> impl Iterator<Item = PodAt> + '_ {
        let per_node = u64::from(self.options.pods_per_node);
        let all = u64::from(self.options.nodes) * per_node;
        (u64::from(service)..all)
            .step_by(self.services().max(1) as usize)
            .map(move |g| PodAt {
                node: (g / per_node) as u32,
                index: (g % per_node) as u32,
            })
    }

    /// The endpoint a trace follows when it names none: the first in kube-proxy's order, which
    /// sorts endpoints by `ip:port` as text.
    pub fn first_endpoint(&self, service: u32) -> Option<PodAt> {
        self.endpoints(service)
            .min_by_key(|p| format!("{}:{CONTAINER_PORT}", self.pod_ip(*p)))
    }

    /// `count` cases picked by the seed: three in four to a Service, the rest to a pod, each
    /// from a pod on another node than the one it reaches.
    pub fn cases(&self, count: u32) -> Vec<Case> {
        let o = &self.options;
        if o.nodes < 2 || o.services_per_node == 0 {
            return vec![];
        }
        let mut rng = Rng::new(o.seed);
        let pod = |rng: &mut Rng| PodAt {
            node: rng.below(o.nodes),
            index: rng.below(o.pods_per_node),
        };
        // Moving to the next node keeps the case deterministic and always crosses nodes.
        let elsewhere = |from: PodAt, node: u32| PodAt {
            node: if from.node == node {
                (node + 1) % o.nodes
            } else {
                from.node
            },
            ..from
        };
        (0..count)
            .map(|_| {
                if rng.below(4) < 3 {
                    let service = rng.below(self.services());
                    let from = pod(&mut rng);
                    let target = self.first_endpoint(service).expect("every Service has an endpoint");
                    Case::ToService {
                        from: elsewhere(from, target.node),
                        service,
                    }
                } else {
                    let to = pod(&mut rng);
                    let from = pod(&mut rng);
                    Case::ToPod {
                        from: elsewhere(from, to.node),
                        to,
                    }
                }
            })
            .collect()
    }
}

fn offset(base: Ipv4Addr, by: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(base) + by)
}

/// splitmix64: small, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`; `n` is above 0.
    fn below(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n)) as u32
    }
}

#[cfg(test)]
mod tests;
