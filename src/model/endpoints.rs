//! Which endpoints of a Service port get new connections, as kube-proxy decides it.
//!
//! kube-proxy (v1.31, `pkg/proxy/topology.go` `CategorizeEndpoints`, with the conditions read
//! as `pkg/proxy/endpointslicecache.go` reads them) sends new connections to the ready
//! endpoints; only when none is ready does it fall back to those that are serving and
//! terminating, so a rolling update does not drop traffic. Everything else is left out of its
//! chains. Endpoints made from a selector get the conditions the EndpointSlice controller
//! gives them: ready when the pod is Ready and not being deleted, serving when it is Ready,
//! terminating when it is being deleted.

use std::fmt;
use std::net::Ipv4Addr;

use super::Endpoint;

/// An endpoint with its EndpointSlice conditions, before kube-proxy picks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub endpoint: Endpoint,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
}

/// Why an endpoint gets no new connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Not ready and not terminating: failing its readiness probe, or still starting.
    NotReady,
    /// Serving and terminating, while other endpoints are ready.
    TerminatingWhileOthersReady,
    /// Terminating and no longer serving.
    TerminatingNotServing,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            SkipReason::NotReady => "not ready, so kube-proxy sends it no traffic",
            SkipReason::TerminatingWhileOthersReady => {
                "terminating: kube-proxy sends a terminating endpoint new connections only when no endpoint is ready"
            }
            SkipReason::TerminatingNotServing => "terminating and no longer serving, so kube-proxy sends it no traffic",
        })
    }
}

/// An endpoint left out of kube-proxy's chains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub pod: usize,
    pub ip: Ipv4Addr,
    pub port: u16,
    pub reason: SkipReason,
}

/// The candidates split into those kube-proxy uses and those it skips.
pub fn categorize(candidates: Vec<Candidate>) -> (Vec<Endpoint>, Vec<Skipped>) {
    let any_ready = candidates.iter().any(|c| c.ready);
    let mut used = Vec::new();
    let mut skipped = Vec::new();
    for c in candidates {
        let reason = if c.ready {
            None
        } else if !c.terminating {
            Some(SkipReason::NotReady)
        } else if !c.serving {
            Some(SkipReason::TerminatingNotServing)
        } else if any_ready {
            Some(SkipReason::TerminatingWhileOthersReady)
        } else {
            None
        };
        match reason {
            None => used.push(c.endpoint),
            Some(reason) => skipped.push(Skipped {
                pod: c.endpoint.pod,
                ip: c.endpoint.ip,
                port: c.endpoint.port,
                reason,
            }),
        }
    }
    (used, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(pod: usize, ready: bool, serving: bool, terminating: bool) -> Candidate {
        Candidate {
            endpoint: Endpoint {
                pod,
                ip: Ipv4Addr::new(10, 0, 0, pod as u8),
                port: 80,
            },
            ready,
            serving,
            terminating,
        }
    }

    #[test]
    fn ready_endpoints_win_over_terminating_ones() {
        let (used, skipped) = categorize(vec![
            candidate(1, true, true, false),
            candidate(2, false, true, true),
            candidate(3, false, false, false),
            candidate(4, false, false, true),
        ]);
        assert_eq!(used.iter().map(|e| e.pod).collect::<Vec<_>>(), [1]);
        let reasons: Vec<(usize, SkipReason)> = skipped.iter().map(|s| (s.pod, s.reason)).collect();
        assert_eq!(
            reasons,
            [
                (2, SkipReason::TerminatingWhileOthersReady),
                (3, SkipReason::NotReady),
                (4, SkipReason::TerminatingNotServing)
            ]
        );
    }

    #[test]
    fn serving_terminating_endpoints_are_the_fallback() {
        let (used, skipped) = categorize(vec![candidate(2, false, true, true), candidate(3, false, false, false)]);
        assert_eq!(used.iter().map(|e| e.pod).collect::<Vec<_>>(), [2]);
        assert_eq!(skipped.len(), 1);
    }
}
