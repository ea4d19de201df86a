//! What decides whether a pod gets traffic: its readiness and whether it is being deleted, and
//! endpoints written out as EndpointSlices hold them (for Services without a selector, or to
//! say exactly what the cluster's slices say).
//!
//! ```yaml
//! pods:
//! - {name: web-3, node: node-2, ip: 10.0.2.4, ready: false, containers: [...]}
//! services:
//! - name: db
//!   clusterIP: 10.96.0.50
//!   ports: [{name: pg, port: 5432}]
//!   endpoints:
//!   - ip: 10.0.1.9
//!     ports: [{name: pg, port: 5432}]
//!     ready: false
//!     serving: true
//!     terminating: true
//! ```

use std::net::Ipv4Addr;

use super::decode::{CollectFitted, Decoder, Fields, Sp};
use super::spec::PROTOCOLS;
use super::tree::Node;
use crate::diagnostic::Span;

/// A pod's `ready` (its Ready condition; true when not written) and `terminating` (it has a
/// deletion timestamp; false when not written).
#[derive(Debug, Clone, Default)]
pub struct PodConditionsSpec {
    pub ready: Option<Sp<bool>>,
    pub terminating: Option<Sp<bool>>,
}

/// One endpoint of an EndpointSlice: an address, the ports it serves and its conditions.
#[derive(Debug, Clone)]
pub struct EndpointSpec {
    pub ip: Option<Sp<Ipv4Addr>>,
    pub node: Option<Sp<String>>,
    /// `None`: the Service port's own target port, when it is a number.
    pub ports: Option<Vec<EndpointPortSpec>>,
    pub ready: Option<Sp<bool>>,
    pub serving: Option<Sp<bool>>,
    pub terminating: Option<Sp<bool>>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct EndpointPortSpec {
    pub name: Option<Sp<String>>,
    pub port: Option<Sp<u16>>,
    pub protocol: Option<Sp<String>>,
    pub span: Span,
}

fn flag(dec: &mut Decoder, f: &Fields<'_>, key: &str) -> Option<Sp<bool>> {
    let n = f.get(key)?;
    Some(Sp::new(dec.bool(n, key)?, super::decode::span_of(n)))
}

pub fn decode_pod_conditions(dec: &mut Decoder, f: &Fields<'_>) -> PodConditionsSpec {
    PodConditionsSpec {
        ready: flag(dec, f, "ready"),
        terminating: flag(dec, f, "terminating"),
    }
}

pub fn decode_endpoints(dec: &mut Decoder, node: &Node) -> Vec<EndpointSpec> {
    dec.list(node, "`endpoints`")
        .iter()
        .filter_map(|e| {
            let known = ["ip", "nodeName", "ports", "ready", "serving", "terminating"];
            let f = dec.fields(e, "an endpoint", &known)?;
            Some(EndpointSpec {
                ip: dec
                    .require(&f, "ip", "an endpoint")
                    .and_then(|n| dec.ipv4(n, "endpoint IP")),
                node: f.get("nodeName").and_then(|n| dec.string(n, "node name")),
                ports: f.get("ports").map(|n| decode_ports(dec, n)),
                ready: flag(dec, &f, "ready"),
                serving: flag(dec, &f, "serving"),
                terminating: flag(dec, &f, "terminating"),
                span: f.span,
            })
        })
        .collect_fitted()
}

fn decode_ports(dec: &mut Decoder, node: &Node) -> Vec<EndpointPortSpec> {
    dec.list(node, "`ports`")
        .iter()
        .filter_map(|p| {
            let f = dec.fields(p, "an endpoint port", &["name", "port", "protocol"])?;
            Some(EndpointPortSpec {
                name: f.get("name").and_then(|n| dec.string(n, "port name")),
                port: dec
                    .require(&f, "port", "an endpoint port")
                    .and_then(|n| dec.port(n, "port")),
                protocol: f.get("protocol").and_then(|n| dec.word(n, "protocol", PROTOCOLS)),
                span: f.span,
            })
        })
        .collect_fitted()
}
