//! An HTTP request given as `--to`: where the client connects (the ingress controller Service's
//! load-balancer address, or a node's NodePort) and what it asks for.

use std::net::SocketAddrV4;

use super::{Endpoints, Error, HttpRequest, Query, http};
use crate::compile::cloud::lb_backends;
use crate::model::Cluster;

/// What `--to` asked of an ingress controller.
pub(super) struct HttpAsk<'a> {
    pub host: &'a str,
    pub path: &'a str,
    pub https: bool,
    /// The controller of the Ingress named, when one was.
    pub controller: Option<usize>,
}

pub(super) fn ingress_request(
    c: &Cluster,
    q: &Query<'_>,
    ends: &mut Endpoints,
    notes: &mut Vec<String>,
    ask: HttpAsk<'_>,
) -> Result<SocketAddrV4, Error> {
    let HttpAsk {
        host,
        path,
        https,
        controller: wanted_controller,
    } = ask;
    let mut ingresses: Vec<_> = c.ingresses.iter().collect();
    if ingresses.is_empty() {
        return Err("the scenario has no Ingress to route an HTTP request".into());
    }
    ingresses.sort_by_key(|i| (i.namespace.clone(), i.name.clone()));
    // The controller whose Ingresses match the host best; else the first Ingress's.
    let controller = match wanted_controller {
        Some(c) => c,
        None => ingresses
            .iter()
            .flat_map(|i| i.rules.iter().map(move |r| (i, r)))
            .filter_map(|(i, r)| http::host_rank(r.host.as_deref(), host).map(|m| (m, i.controller)))
            .max_by_key(|(m, _)| *m)
            .map(|(_, c)| c)
            .unwrap_or(ingresses[0].controller),
    };
    let s = &c.services[controller];
    let want = if https { 443 } else { 80 };
    let scheme = if https { "https" } else { "http" };
    let sp = s
        .ports
        .iter()
        .find(|p| p.port == want)
        .or_else(|| s.ports.iter().find(|p| p.name.as_deref() == Some(scheme)))
        .or_else(|| s.ports.first())
        .ok_or_else(|| format!("ingress controller service {} has no ports", s.qualified_name()))?;
    ends.http = Some(HttpRequest {
        host: host.to_owned(),
        path: path.to_owned(),
        controller,
    });
    if https {
        notes.push("TLS is not modelled: the request is routed as if it were plain HTTP on port 443".into());
    }
    if let Some(ip) = s.load_balancer_ip {
        ends.load_balancer = Some(controller);
        notes.push(format!(
            "{host} is taken to resolve to {ip}, the load-balancer address of the ingress controller's service {}",
            s.qualified_name()
        ));
        return Ok(SocketAddrV4::new(ip, sp.port));
    }
    if let Some(node_port) = sp.node_port {
        // The first node by name that would deliver: under the Local policy, one that runs a
        // controller pod.
        let backends = lb_backends(c, s);
        let node = match q.via_node {
            Some(n) => c.node_named(n).ok_or_else(|| format!("--via-node: no node `{n}`"))?,
            None => backends
                .iter()
                .find(|b| b.healthy)
                .or(backends.first())
                .map(|b| b.node)
                .ok_or("the cluster has no nodes")?,
        };
        let n = &c.nodes[node];
        notes.push(format!(
            "the ingress controller's service {} has no load-balancer address: {host} is taken to resolve to node {} ({}), where NodePort {node_port} leads to the controller",
            s.qualified_name(),
            n.name,
            n.ip
        ));
        return Ok(SocketAddrV4::new(n.ip, node_port));
    }
    let ip = s.cluster_ip.ok_or_else(|| {
        format!(
            "ingress controller service {} is headless: nothing to connect to",
            s.qualified_name()
        )
    })?;
    notes.push(format!(
        "the ingress controller's service {} is only reachable at its ClusterIP {ip}, from inside the cluster",
        s.qualified_name()
    ));
    Ok(SocketAddrV4::new(ip, sp.port))
}

/// `SCHEME://HOST[:PORT][/PATH][?QUERY][#FRAGMENT]`, for http and https to the default ports.
pub(super) fn parse_url(scheme: &str, rest: &str, port: Option<u16>) -> Result<(String, String, bool), Error> {
    let https = match scheme.to_ascii_lowercase().as_str() {
        "http" => false,
        "https" => true,
        _ => {
            return Err(format!(
                "`{scheme}://` is not HTTP: write http://HOST/PATH or https://HOST/PATH"
            ));
        }
    };
    // An HTTP request line holds no spaces or control characters: a client percent-encodes
    // them, so a URL that still has one is not a request any client sends.
    if rest.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "`{scheme}://{rest}` holds a space or control character: percent-encode it (%20, %1B)"
        ));
    }
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, explicit) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(super::parse_port(p)?)),
        None => (authority, None),
    };
    let default = if https { 443 } else { 80 };
    if let Some(p) = explicit.or(port).filter(|&p| p != default) {
        return Err(format!(
            "the ingress controller is reached on port {default} for {scheme}; port {p} is not modelled"
        ));
    }
    let valid_label =
        |l: &str| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if host.is_empty() || host.len() > 253 || !host.split('.').all(valid_label) {
        return Err(format!(
            "`{host}` is not a host name: write http://shop.example.com/PATH"
        ));
    }
    if path.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(format!(
            "`{path}` has `.` or `..` segments: write the path the server would see"
        ));
    }
    Ok((host.to_ascii_lowercase(), path.to_owned(), https))
}
