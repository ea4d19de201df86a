//! The endpoints kube-proxy leaves out of a Service port, named in the trace with the reason, so
//! a reader who expected a pod to answer sees why it did not.

use crate::model::{Cluster, Protocol};

/// One note per endpoint of the port that gets no new connections.
pub fn notes(c: &Cluster, si: usize, port: u16, protocol: Protocol, notes: &mut Vec<String>) {
    let s = &c.services[si];
    let Some(sp) = s.ports.iter().find(|p| p.port == port && p.protocol == protocol) else {
        return;
    };
    for skipped in &sp.skipped {
        notes.push(format!(
            "endpoint pod {} ({}:{}) of svc/{} is skipped: {}",
            c.pods[skipped.pod].qualified_name(),
            skipped.ip,
            skipped.port,
            s.name,
            skipped.reason
        ));
    }
}
