//! A Service port's endpoints with their conditions: from the pods its selector picks, or from
//! the endpoints written out (EndpointSlices), which then are the whole truth.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use super::{Validator, protocol};
use crate::diagnostic::{Diagnostic, Span};
use crate::input::endpoints::EndpointSpec;
use crate::model::endpoints::Candidate;
use crate::model::{Endpoint, Pod, Protocol, TargetPort};

/// An endpoint written out, with the pod at its address.
pub(super) struct Resolved<'a> {
    spec: &'a EndpointSpec,
    ip: Ipv4Addr,
    pod: usize,
}

/// The pod at each address: its own, or for hostNetwork pods their node's, where the first
/// of the pods sharing it stands for all (they share its network namespace).
pub(super) fn pods_by_ip(pods: &[(Pod, Span)]) -> HashMap<Ipv4Addr, usize> {
    let mut by_ip: HashMap<Ipv4Addr, usize> = HashMap::with_capacity(pods.len());
    for (i, (p, _)) in pods.iter().enumerate() {
        by_ip.entry(p.ip).or_insert(i);
    }
    by_ip
}

impl Validator {
    /// The pods behind the written endpoints. One whose address is no pod of the input is
    /// left out with a warning: nothing says what would answer there.
    pub(super) fn resolve_endpoints<'a>(
        &mut self,
        specs: &'a [EndpointSpec],
        by_ip: &HashMap<Ipv4Addr, usize>,
        service: &str,
    ) -> Vec<Resolved<'a>> {
        let mut out = Vec::new();
        for e in specs {
            let Some(ip) = &e.ip else { continue };
            match by_ip.get(&ip.value).copied() {
                Some(pod) => out.push(Resolved {
                    spec: e,
                    ip: ip.value,
                    pod,
                }),
                None => self.diagnostics.push(
                    Diagnostic::warning(format!(
                        "endpoint {} of service `{service}` is not the address of any pod in the input",
                        ip.value
                    ))
                    .at(ip.span)
                    .label("no pod has this address")
                    .help("k8snet cannot know what answers there, so it leaves the endpoint out; add the pod, or remove the endpoint"),
                ),
            }
        }
        out
    }
}

/// The written endpoints serving one Service port: the endpoint port of the same name and
/// protocol, or, when an endpoint lists no ports, the Service's target port.
pub(super) fn written_candidates(
    resolved: &[Resolved<'_>],
    pods: &[(Pod, Span)],
    port_name: Option<&str>,
    port_protocol: Protocol,
    target: &TargetPort,
) -> Vec<Candidate> {
    resolved
        .iter()
        .filter_map(|r| {
            let port = match &r.spec.ports {
                Some(ports) => ports
                    .iter()
                    .find(|p| {
                        p.name.as_ref().map(|n| n.value.as_str()).filter(|n| !n.is_empty()) == port_name
                            && protocol(&p.protocol) == port_protocol
                    })
                    .and_then(|p| p.port.as_ref().map(|n| n.value))?,
                None => target_on(&pods[r.pod].0, target, port_protocol)?,
            };
            let ready = r.spec.ready.as_ref().is_none_or(|v| v.value);
            Some(Candidate {
                endpoint: Endpoint {
                    pod: r.pod,
                    ip: r.ip,
                    port,
                },
                ready,
                serving: r.spec.serving.as_ref().map_or(ready, |v| v.value),
                terminating: r.spec.terminating.as_ref().is_some_and(|v| v.value),
            })
        })
        .collect()
}

/// A selected pod as the EndpointSlice controller lists it.
pub(super) fn selected_candidate(i: usize, pod: &Pod, port: u16) -> Candidate {
    Candidate {
        endpoint: Endpoint {
            pod: i,
            ip: pod.ip,
            port,
        },
        ready: pod.ready && !pod.terminating,
        serving: pod.ready,
        terminating: pod.terminating,
    }
}

/// The port a target port names on a pod.
pub(super) fn target_on(pod: &Pod, target: &TargetPort, protocol: Protocol) -> Option<u16> {
    match target {
        TargetPort::Number(n) => Some(*n),
        TargetPort::Name(n) => pod
            .listeners()
            .find(|(_, cp)| cp.name.as_deref() == Some(n.as_str()) && cp.protocol == protocol)
            .map(|(_, cp)| cp.port),
    }
}
