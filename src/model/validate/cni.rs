//! The CNI model's settings, and what each model asks of the nodes: Calico's pool and block
//! size, the node subnets, and flannel host-gw's one shared layer-2 segment.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::{Validator, overlaps};
use crate::input::decode::Sp;
use crate::input::spec::Scenario;
use crate::model::subnet_gateway;
use crate::model::{CalicoPool, Cni, Encapsulation, KubeProxyMode};

/// Calico's own defaults (`calico-node`'s `CALICO_IPV4POOL_IPIP=Always`, block size 26).
const CALICO_DEFAULT_ENCAPSULATION: Encapsulation = Encapsulation::Ipip;
const CALICO_DEFAULT_BLOCK_SIZE: u8 = 26;

pub(super) struct CniSettings {
    pub cni: Cni,
    pub calico: Option<CalicoPool>,
    pub node_subnets: Vec<Ipv4Net>,
    pub kube_proxy: KubeProxyMode,
}

/// The devices of a node under the model, `eth0` and `lo` first.
pub(super) fn node_devices(settings: &CniSettings) -> Vec<&'static str> {
    let mut devices = vec!["eth0", "lo"];
    devices.extend(match settings.cni {
        Cni::Bridge => &["cbr0"][..],
        Cni::FlannelHostGw => &["cni0"][..],
        Cni::FlannelVxlan => &["cni0", "flannel.1"][..],
        Cni::Cilium => &["cilium_host"][..],
        Cni::Calico => match settings.calico.map(|p| p.encapsulation) {
            Some(Encapsulation::Vxlan | Encapsulation::VxlanCrossSubnet) => &["vxlan.calico"][..],
            Some(Encapsulation::Ipip | Encapsulation::IpipCrossSubnet) => &["tunl0"][..],
            _ => &[][..],
        },
    });
    devices
}

impl Validator {
    pub(super) fn cni_settings(
        &mut self,
        s: &Scenario,
        node_network: Option<&Sp<Ipv4Net>>,
        pod_network: Option<&Sp<Ipv4Net>>,
    ) -> CniSettings {
        let c = &s.cluster;
        let cni = match c.cni.as_ref().map(|w| w.as_str()) {
            Some("flannel-host-gw") => Cni::FlannelHostGw,
            Some("flannel-vxlan") => Cni::FlannelVxlan,
            Some("calico") => Cni::Calico,
            Some("cilium") => Cni::Cilium,
            _ => Cni::Bridge,
        };
        let kube_proxy = match c.kube_proxy.as_ref().map(|w| w.as_str()) {
            Some("none") => KubeProxyMode::None,
            Some("nftables") => KubeProxyMode::Nftables,
            Some("ipvs") => KubeProxyMode::Ipvs,
            _ => KubeProxyMode::Iptables,
        };
        if kube_proxy == KubeProxyMode::None
            && cni != Cni::Cilium
            && let Some(k) = &c.kube_proxy
        {
            self.error(
                k.span,
                format!("cni {} does not replace kube-proxy", cni.word()),
                "without kube-proxy nothing would translate Services; only `cni: cilium` replaces it (set `kubeProxy: iptables`)",
            );
        }
        let calico_only = [
            ("encapsulation", c.encapsulation.as_ref().map(|e| e.span)),
            ("ipPool", c.ip_pool.as_ref().map(|e| e.span)),
            ("blockSize", c.block_size.as_ref().map(|e| e.span)),
        ];
        let calico = if cni == Cni::Calico {
            let ip_pool = c.ip_pool.as_ref().map(|p| p.value).or(pod_network.map(|p| p.value));
            if let (Some(pool), Some(pods)) = (&c.ip_pool, pod_network)
                && !pods.contains(&pool.value)
            {
                self.error(
                    pool.span,
                    format!("ipPool {} is outside podNetwork {}", pool.value, pods.value),
                    format!(
                        "Calico's pool hands out pod addresses, so it must lie in podNetwork {}",
                        pods.value
                    ),
                );
            }
            let block_size = c
                .block_size
                .as_ref()
                .map_or(CALICO_DEFAULT_BLOCK_SIZE, |b| b.value as u8);
            ip_pool.map(|ip_pool| CalicoPool {
                encapsulation: c
                    .encapsulation
                    .as_ref()
                    .and_then(|e| Encapsulation::from_word(e))
                    .unwrap_or(CALICO_DEFAULT_ENCAPSULATION),
                ip_pool,
                block_size,
            })
        } else {
            for (field, span) in calico_only {
                if let Some(span) = span {
                    self.error(
                        span,
                        format!("`{field}` is a Calico setting, and the cni is {}", cni.word()),
                        "remove it, or set `cni: calico`",
                    );
                }
            }
            None
        };
        let node_subnets = self.node_subnets(s, node_network);
        CniSettings {
            cni,
            calico,
            node_subnets,
            kube_proxy,
        }
    }

    fn node_subnets(&mut self, s: &Scenario, node_network: Option<&Sp<Ipv4Net>>) -> Vec<Ipv4Net> {
        let Some(list) = &s.cluster.node_subnets else {
            return Vec::new();
        };
        let mut out: Vec<Ipv4Net> = Vec::new();
        for subnet in list {
            if let Some(net) = node_network
                && !net.contains(&subnet.value)
            {
                self.error(
                    subnet.span,
                    format!("node subnet {} is outside nodeNetwork {}", subnet.value, net.value),
                    format!("node subnets divide nodeNetwork {}", net.value),
                );
                continue;
            }
            if let Some(other) = out.iter().find(|o| overlaps(o, subnet)) {
                self.error(
                    subnet.span,
                    format!("node subnet {} overlaps node subnet {other}", subnet.value),
                    "each node subnet is a layer-2 segment of its own; give them separate ranges",
                );
                continue;
            }
            out.push(subnet.value);
        }
        out
    }

    /// Checks each node's place for the CNI: on a listed subnet, on flannel host-gw's single
    /// segment, and with a podCIDR Calico's pool and blocks can serve.
    pub(super) fn cni_nodes(&mut self, s: &Scenario, settings: &CniSettings, gateway: Option<Ipv4Addr>) {
        let subnets = &settings.node_subnets;
        let mut first_subnet: Option<(Ipv4Net, String)> = None;
        for n in &s.nodes {
            let (Some(ip), Some(name)) = (&n.ip, &n.name) else {
                continue;
            };
            let subnet = if subnets.is_empty() {
                None
            } else {
                match subnets.iter().find(|sn| sn.contains(&ip.value)) {
                    Some(sn) => Some(*sn),
                    None => {
                        self.error(
                            ip.span,
                            format!("node IP {} is on none of the nodeSubnets", ip.value),
                            format!(
                                "pick an address in one of {}, or list its subnet",
                                subnets.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
                            ),
                        );
                        continue;
                    }
                }
            };
            if let Some(sn) = subnet
                && Some(ip.value) == subnet_gateway(sn, gateway)
            {
                self.error(
                    ip.span,
                    format!("node IP {} is the router's address on subnet {sn}", ip.value),
                    "the router takes the subnet's first address; give the node another one",
                );
            }
            if matches!(settings.cni, Cni::FlannelHostGw | Cni::Cilium)
                && let Some(sn) = subnet
            {
                match &first_subnet {
                    None => first_subnet = Some((sn, name.value.clone())),
                    Some((first, first_node)) if *first != sn => self.error(
                        ip.span,
                        format!(
                            "{} needs every node on one layer-2 segment, but node {} is on {sn} and node {first_node} on {first}",
                            if settings.cni == Cni::Cilium { "cilium's native routing (auto-direct-node-routes)" } else { "flannel host-gw" },
                            name.value
                        ),
                        "its routes send each podCIDR via the owning node's address, which must be a direct neighbour; put the nodes on one subnet, or use a model that encapsulates between subnets (`cni: flannel-vxlan`, or calico with a CrossSubnet encapsulation)",
                    ),
                    Some(_) => {}
                }
            }
            if let (Some(pool), Some(cidr)) = (&settings.calico, &n.pod_cidr) {
                if !pool.ip_pool.contains(&cidr.value) {
                    self.error(
                        cidr.span,
                        format!("podCIDR {} is outside Calico's ipPool {}", cidr.value, pool.ip_pool),
                        "k8snet takes a node's Calico blocks from its podCIDR; pick one inside the pool",
                    );
                }
                if pool.block_size < cidr.prefix_len() {
                    self.error(
                        cidr.span,
                        format!(
                            "podCIDR {} is smaller than one Calico block (/{})",
                            cidr.value, pool.block_size
                        ),
                        format!("use a podCIDR of /{} or larger, or a larger blockSize", pool.block_size),
                    );
                }
            }
        }
    }
}
