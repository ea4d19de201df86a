//! Service translation by eBPF programs (Cilium's kube-proxy replacement), applied by its
//! effect where the programs run: at connect() for the sockets a host opens (the ClusterIP is
//! swapped for a backend before any packet exists, and swapped back for the socket on the way
//! in), and on the node's network device for a NodePort (the destination becomes a backend
//! and, for a remote one, the source the node's address, kept in conntrack for the reply).

use std::net::SocketAddrV4;

use super::{End, Simulator};
use crate::net::service_lb::Frontend;
use crate::net::{Link, Role};
use crate::trace::{Branch, Step, Tuple};

/// What the socket program did to a connection: the tuple the application asked for and the
/// one the socket really uses.
#[derive(Debug, Clone, Copy)]
pub(super) struct SocketTranslation {
    pub asked: Tuple,
    pub used: Tuple,
}

impl<'a> Simulator<'a> {
    /// The frontend as the maps on `host`'s node hold it: under a Local traffic policy only the
    /// backends on that node, which a step says.
    fn scoped(&mut self, host: usize, frontend: &Frontend) -> Frontend {
        let node = match &self.host(host).role {
            Role::Pod { node, .. } => Some(node.as_str()),
            Role::Node { name } => Some(name.as_str()),
            _ => None,
        };
        let scoped = frontend.on_node(node).into_owned();
        if let Some(local) = &frontend.local_to {
            self.step(Step::Note {
                text: format!(
                    "{}: Local: the Service maps on {} hold only the backends on that node ({} of {})",
                    local.policy,
                    node.unwrap_or("this host"),
                    scoped.backends.len(),
                    frontend.backends.len()
                ),
            });
        }
        scoped
    }

    /// The backend the program picks for `frontend`, as a load-balancing step: equal shares,
    /// the pinned or n-th branch when asked, as for kube-proxy's rules.
    fn pick_backend(&mut self, frontend: &Frontend, program: &str) -> SocketAddrV4 {
        let n = frontend.backends.len();
        let decision = self.decisions;
        self.decisions += 1;
        let pinned = frontend.backends.iter().position(|b| self.choice.pins.contains(b.ip()));
        let (index, how) = match (pinned, self.choice.nth) {
            (Some(i), _) => (i, format!("the backend {} , as asked", frontend.backends[i].ip())),
            (None, Some((k, b))) if k == decision => {
                (b.min(n - 1), format!("backend {} of {n}, as asked", b.min(n - 1) + 1))
            }
            _ => (0, "the first backend (the eBPF program draws one at random)".to_owned()),
        };
        let branches = frontend
            .backends
            .iter()
            .enumerate()
            .map(|(i, b)| Branch {
                rule: format!("{program}: {} backend {} of {n}", frontend.name, i + 1),
                target: b.to_string(),
                probability: 1.0 / (n - i) as f64,
                share: 1.0 / n as f64,
                chosen: i == index,
                to: Some(*b),
                endpoint: None,
                node: None,
            })
            .collect();
        self.step(Step::LoadBalance {
            chain: format!("{program}: {}", frontend.name),
            branches,
            how,
        });
        frontend.backends[index]
    }

    /// connect() to a ClusterIP from a socket on `host`: the program connects the socket to a
    /// backend instead.
    pub(super) fn socket_connect(&mut self, host: usize, tuple: Tuple) -> Result<Tuple, End> {
        if self.client.is_some() {
            return Ok(tuple);
        }
        let Some(lb) = self.host(host).service_lb.as_deref() else {
            return Ok(tuple);
        };
        let Some(frontend) = lb.frontend(tuple.dst, tuple.protocol) else {
            return Ok(tuple);
        };
        let program = "bpf_sock (cgroup/connect4)";
        let listed = frontend;
        let frontend = &self.scoped(host, listed);
        if frontend.backends.is_empty() {
            let here = match &listed.local_to {
                Some(local) if !listed.backends.is_empty() => {
                    format!(" on this node (its {}: Local lists only those)", local.policy)
                }
                _ => String::new(),
            };
            return Err(End::Rejected {
                host,
                rule: format!("{program}: {} has no backends{here}, so connect() fails", frontend.name),
            });
        }
        let backend = self.pick_backend(frontend, program);
        let used = Tuple { dst: backend, ..tuple };
        self.step(Step::Nat {
            nat: "DNAT".into(),
            before: tuple,
            after: used,
            conntrack: None,
            endpoint: None,
            node: None,
        });
        self.step(Step::Note {
            text: "eBPF, modelled by its effect: Cilium's socket program connects the socket to the backend itself, so no packet carries the ClusterIP and conntrack never sees it; replies are given back the ClusterIP for the socket (cgroup/recvmsg4)".into(),
        });
        self.socket = Some(SocketTranslation { asked: tuple, used });
        Ok(used)
    }

    /// A reply reaching the client's socket: the program gives it back the address dialled.
    pub(super) fn socket_reply(&mut self, mut tuple: Tuple) -> Tuple {
        if let Some(t) = self.socket
            && tuple.src == t.used.dst
        {
            tuple.src = t.asked.dst;
            self.step(Step::Note {
                text: format!(
                    "eBPF (bpf_sock, cgroup/recvmsg4), modelled by its effect: the socket sees the reply from {}, the address it dialled",
                    t.asked.dst
                ),
            });
        }
        tuple
    }

    /// A new connection arriving on a node's network device for one of its NodePorts: the
    /// program on the device sends it to a backend, with the node's address as its source when
    /// the backend is elsewhere, so the reply comes back through this node.
    pub(super) fn device_node_port(&mut self, host: usize, iif: &str, tuple: Tuple) -> Tuple {
        let h = self.host(host);
        let Some(lb) = h.service_lb.as_deref() else {
            return tuple;
        };
        let Some(dev) = h.interface(iif) else { return tuple };
        if !matches!(dev.link, Link::Segment { .. }) || !h.owns(*tuple.dst.ip()) {
            return tuple;
        }
        let Some(frontend) = lb.node_port(tuple.dst.port(), tuple.protocol) else {
            return tuple;
        };
        let listed = frontend;
        let frontend = &self.scoped(host, listed);
        if frontend.backends.is_empty() {
            if listed.local_to.is_some() {
                self.step(Step::Note {
                    text: format!(
                        "eBPF, modelled by its effect: with no backend for NodePort {} on this node, Cilium's NodePort program leaves the packet to the node's own stack",
                        tuple.dst.port()
                    ),
                });
            }
            return tuple;
        }
        let program = "bpf_host (tc ingress on the node's device)";
        let backend = self.pick_backend(frontend, program);
        let remote = crate::net::route::lookup(&h.tables, *backend.ip())
            .route
            .and_then(|r| r.dev.clone())
            .is_some_and(|d| d == iif);
        let mut after = Tuple { dst: backend, ..tuple };
        if remote && let Some(own) = h.primary_addr(iif) {
            after.src = SocketAddrV4::new(own, tuple.src.port());
        }
        self.step(Step::Nat {
            nat: "DNAT".into(),
            before: tuple,
            after,
            conntrack: None,
            endpoint: None,
            node: None,
        });
        self.step(Step::Note {
            text: format!(
                "eBPF, modelled by its effect: Cilium's NodePort program sends the connection to a backend{}; the translation is kept for the reply",
                if remote { " with the node's address as its source (SNAT mode), as the backend is on another node" } else { "" }
            ),
        });
        after
    }
}
