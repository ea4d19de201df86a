//! `externalIPs`: refused where the API server refuses them (`ValidateNonSpecialIP`: the
//! unspecified address, loopback, link-local and link-local multicast), and named where the
//! kube-proxy mode does not model them.

use std::net::Ipv4Addr;

use super::Validator;
use crate::diagnostic::Diagnostic;
use crate::input::decode::Sp;
use crate::input::spec::Scenario;
use crate::model::KubeProxyMode;

/// Why the API server refuses `ip` as an externalIP, in its own words.
fn refused(ip: Ipv4Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        Some("may not be unspecified (0.0.0.0)")
    } else if ip.is_loopback() {
        Some("may not be in the loopback range (127.0.0.0/8)")
    } else if ip.is_link_local() {
        Some("may not be in the link-local range (169.254.0.0/16)")
    } else if ip.octets()[..3] == [224, 0, 0] {
        Some("may not be in the link-local multicast range (224.0.0.0/24)")
    } else {
        None
    }
}

impl Validator {
    /// The Service's externalIPs that the API server would take, each refused one an error.
    pub(super) fn external_ips(&mut self, ips: &[Sp<Ipv4Addr>]) -> Vec<Ipv4Addr> {
        let mut out = Vec::with_capacity(ips.len());
        for ip in ips {
            match refused(ip.value) {
                Some(why) => self.error(
                    ip.span,
                    format!("externalIP {} {why}", ip.value),
                    "the API server refuses it; an externalIP is an address routed to the nodes from outside the cluster",
                ),
                None => out.push(ip.value),
            }
        }
        out
    }

    /// In IPVS mode kube-proxy binds externalIPs to kube-ipvs0 and gives each a virtual server,
    /// and Cilium's replacement answers them in eBPF; k8snet models neither, and says so where
    /// the addresses are written.
    pub(super) fn external_ips_under(&mut self, s: &Scenario, mode: KubeProxyMode) {
        let what = match mode {
            KubeProxyMode::Ipvs => "kube-proxy's IPVS mode",
            KubeProxyMode::None => "Cilium's kube-proxy replacement",
            KubeProxyMode::Iptables | KubeProxyMode::Nftables => return,
        };
        for sv in &s.services {
            if let Some(first) = sv.external_ips.first() {
                self.diagnostics.push(
                    Diagnostic::warning(format!("externalIPs are not modelled in {what}"))
                        .at(first.span)
                        .label("nothing is made for these addresses")
                        .help("traces to these addresses show no kube-proxy translation; the iptables and nftables modes model them"),
                );
            }
        }
    }
}
