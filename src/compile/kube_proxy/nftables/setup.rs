//! What kube-proxy's `setupNFTables` writes before any Service: the base chains and their
//! priorities, the jumps to the top-level chains, masquerading, the checks, and the (empty)
//! sets and maps the Services fill.

use super::{
    CLUSTER_IPS, CLUSTER_IPS_CHECK, FIREWALL_CHECK, FIREWALL_IPS, MARK_MASQ, MASQUERADING, NO_ENDPOINT_NODEPORTS,
    NO_ENDPOINT_SERVICES, NODEPORT_ENDPOINTS_CHECK, NODEPORT_IPS, REJECT_CHAIN, SERVICE_ENDPOINTS_CHECK, SERVICE_IPS,
    SERVICE_NODEPORTS, SERVICES, jump,
};
use crate::compile::kube_proxy::MASQ_MARK as MARK;
use crate::net::nftables::{
    Addrs, ChainType, DSTNAT, Field, Hook, KeyType, Match, Part, Rule, SRCNAT, Set, Statement, Verdict,
};

/// Everything `setupNFTables` writes before the Services: base chains, the jumps to the
/// top-level chains, masquerading, the checks, and the (empty) sets and maps.
pub(super) fn setup(p: &mut Part) {
    use ChainType::{Filter, Nat};
    for (name, kind, hook, priority) in [
        ("filter-prerouting", Filter, Hook::Prerouting, DSTNAT - 10),
        ("filter-input", Filter, Hook::Input, DSTNAT - 10),
        ("filter-forward", Filter, Hook::Forward, DSTNAT - 10),
        ("filter-output", Filter, Hook::Output, DSTNAT - 10),
        ("filter-output-post-dnat", Filter, Hook::Output, DSTNAT + 10),
        ("nat-prerouting", Nat, Hook::Prerouting, DSTNAT),
        ("nat-output", Nat, Hook::Output, DSTNAT),
        ("nat-postrouting", Nat, Hook::Postrouting, SRCNAT),
    ] {
        p.base_chain(name, kind, hook, priority);
    }
    for (to, from, new) in [
        (NODEPORT_ENDPOINTS_CHECK, "filter-input", true),
        (SERVICE_ENDPOINTS_CHECK, "filter-input", true),
        (SERVICE_ENDPOINTS_CHECK, "filter-forward", true),
        (SERVICE_ENDPOINTS_CHECK, "filter-output", true),
        (FIREWALL_CHECK, "filter-prerouting", true),
        (FIREWALL_CHECK, "filter-output", true),
        (SERVICES, "nat-output", false),
        (SERVICES, "nat-prerouting", false),
        (MASQUERADING, "nat-postrouting", false),
        (CLUSTER_IPS_CHECK, "filter-forward", true),
        (CLUSTER_IPS_CHECK, "filter-output-post-dnat", true),
    ] {
        p.chain(to);
        let matches = if new { vec![Match::CtNew] } else { Vec::new() };
        p.append(from, Rule::new(matches, jump(to)));
    }
    for chain in [SERVICES, CLUSTER_IPS_CHECK, MASQUERADING, MARK_MASQ] {
        p.chain(chain);
    }
    p.append(MARK_MASQ, Rule::new(Vec::new(), Statement::MarkOr(MARK)));
    p.append(
        MASQUERADING,
        Rule::new(vec![Match::MarkUnset(MARK)], Statement::Verdict(Verdict::Return)),
    );
    p.append(MASQUERADING, Rule::new(Vec::new(), Statement::MarkXor(MARK)));
    p.append(MASQUERADING, Rule::new(Vec::new(), Statement::Masquerade));

    p.add_set(Set::new(CLUSTER_IPS, KeyType::Addr, false, Some("Active ClusterIPs")));
    let to_cluster_ip = Match::Addr {
        field: Field::Daddr,
        negated: false,
        addrs: Addrs::Set(CLUSTER_IPS.into()),
    };
    p.append(
        CLUSTER_IPS_CHECK,
        Rule::new(vec![to_cluster_ip], Statement::Verdict(Verdict::Reject))
            .commented("Reject traffic to invalid ports of ClusterIPs"),
    );
    // The drop of unallocated ClusterIPs needs the ServiceCIDR objects, which v1.31 watches
    // only under the MultiCIDRServiceAllocator gate, off by default: not written.
    p.add_set(Set::new(
        NODEPORT_IPS,
        KeyType::Addr,
        false,
        Some("IPs that accept NodePort traffic"),
    ));
    p.add_set(Set::new(
        NO_ENDPOINT_SERVICES,
        KeyType::AddrProtoPort,
        true,
        Some("vmap to drop or reject packets to services with no endpoints"),
    ));
    p.add_set(Set::new(
        NO_ENDPOINT_NODEPORTS,
        KeyType::ProtoPort,
        true,
        Some("vmap to drop or reject packets to service nodeports with no endpoints"),
    ));
    p.chain(REJECT_CHAIN).comment = Some("helper for @no-endpoint-services / @no-endpoint-nodeports".into());
    p.append(REJECT_CHAIN, Rule::new(Vec::new(), Statement::Verdict(Verdict::Reject)));
    p.append(
        SERVICE_ENDPOINTS_CHECK,
        Rule::new(
            Vec::new(),
            Statement::Vmap {
                key: KeyType::AddrProtoPort,
                map: NO_ENDPOINT_SERVICES.into(),
            },
        ),
    );
    let to_node_port_ip = || Match::Addr {
        field: Field::Daddr,
        negated: false,
        addrs: Addrs::Set(NODEPORT_IPS.into()),
    };
    p.append(
        NODEPORT_ENDPOINTS_CHECK,
        Rule::new(
            vec![to_node_port_ip()],
            Statement::Vmap {
                key: KeyType::ProtoPort,
                map: NO_ENDPOINT_NODEPORTS.into(),
            },
        ),
    );
    p.add_set(Set::new(
        FIREWALL_IPS,
        KeyType::AddrProtoPort,
        true,
        Some("destinations that are subject to LoadBalancerSourceRanges"),
    ));
    p.append(
        FIREWALL_CHECK,
        Rule::new(
            Vec::new(),
            Statement::Vmap {
                key: KeyType::AddrProtoPort,
                map: FIREWALL_IPS.into(),
            },
        ),
    );
    p.add_set(Set::new(
        SERVICE_IPS,
        KeyType::AddrProtoPort,
        true,
        Some("ClusterIP, ExternalIP and LoadBalancer IP traffic"),
    ));
    p.add_set(Set::new(
        SERVICE_NODEPORTS,
        KeyType::ProtoPort,
        true,
        Some("NodePort traffic"),
    ));
    p.append(
        SERVICES,
        Rule::new(
            Vec::new(),
            Statement::Vmap {
                key: KeyType::AddrProtoPort,
                map: SERVICE_IPS.into(),
            },
        ),
    );
    p.append(
        SERVICES,
        Rule::new(
            vec![to_node_port_ip()],
            Statement::Vmap {
                key: KeyType::ProtoPort,
                map: SERVICE_NODEPORTS.into(),
            },
        ),
    );
}
