//! `generate`: the command-line options as the generator's.

use crate::cli::{AffinityArg, CniArg, GenerateArgs, HairpinArg, KubeProxyArg, PolicyArg};
use crate::generate::Options;
use crate::model::{Cni, HairpinMode, KubeProxyMode, TrafficPolicy};

pub fn options(a: &GenerateArgs) -> Options {
    let policy = |p: PolicyArg| match p {
        PolicyArg::Cluster => TrafficPolicy::Cluster,
        PolicyArg::Local => TrafficPolicy::Local,
    };
    Options {
        nodes: a.nodes,
        pods_per_node: a.pods_per_node,
        services_per_node: a.services_per_node,
        seed: a.seed,
        cni: match a.cni {
            CniArg::Bridge | CniArg::Kubenet => Cni::Bridge,
            CniArg::FlannelHostGw => Cni::FlannelHostGw,
            CniArg::FlannelVxlan => Cni::FlannelVxlan,
            CniArg::Calico => Cni::Calico,
            CniArg::Cilium => Cni::Cilium,
        },
        kube_proxy: match a.kube_proxy {
            KubeProxyArg::Iptables => KubeProxyMode::Iptables,
            KubeProxyArg::Nftables => KubeProxyMode::Nftables,
            KubeProxyArg::Ipvs => KubeProxyMode::Ipvs,
            KubeProxyArg::None => KubeProxyMode::None,
        },
        hairpin_mode: match a.hairpin_mode {
            HairpinArg::HairpinVeth => HairpinMode::HairpinVeth,
            HairpinArg::PromiscuousBridge => HairpinMode::PromiscuousBridge,
            HairpinArg::None => HairpinMode::None,
        },
        bridge_nf_call_iptables: a.bridge_nf_call_iptables,
        node_ports: a.node_ports,
        load_balancers: a.load_balancers,
        external_traffic_policy: policy(a.external_traffic_policy),
        internal_traffic_policy: policy(a.internal_traffic_policy),
        client_ip_affinity: a.session_affinity == AffinityArg::ClientIp,
        traces: a.traces,
    }
}
