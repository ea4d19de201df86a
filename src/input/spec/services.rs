//! Decoding a scenario's Services and their ports.

use super::*;

pub(super) fn decode_service(dec: &mut Decoder, node: &Node) -> Option<ServiceSpec> {
    let known = [
        "name",
        "namespace",
        "type",
        "clusterIP",
        "selector",
        "ports",
        "loadBalancerIP",
        "loadBalancerSourceRanges",
        "externalIPs",
        "externalTrafficPolicy",
        "internalTrafficPolicy",
        "healthCheckNodePort",
        "sessionAffinity",
        "sessionAffinityTimeoutSeconds",
        "endpoints",
    ];
    let f = dec.fields(node, "a service", &known)?;
    let what = "a service";
    // Only a headless Service may have no ports, which the model checks.
    let ports = match f.get("ports") {
        Some(list) => dec
            .list(list, "`ports`")
            .iter()
            .filter_map(|p| decode_service_port(dec, p))
            .collect_fitted(),
        None => Vec::new(),
    };
    Some(ServiceSpec {
        name: dec
            .require(&f, "name", what)
            .and_then(|n| dec.string(n, "service name")),
        namespace: opt(&f, "namespace", |n| dec.string(n, "namespace")),
        kind: opt(&f, "type", |n| {
            dec.word(n, "service type", &["ClusterIP", "NodePort", "LoadBalancer"])
        }),
        cluster_ip: dec
            .require(&f, "clusterIP", what)
            .and_then(|n| dec.string(n, "clusterIP")),
        selector: opt(&f, "selector", |n| Some(dec.string_map(n, "selector"))),
        ports,
        load_balancer_ip: opt(&f, "loadBalancerIP", |n| dec.ipv4(n, "loadBalancerIP")),
        load_balancer_source_ranges: opt(&f, "loadBalancerSourceRanges", |n| {
            let items = dec.list(n, "loadBalancerSourceRanges");
            Some(
                items
                    .iter()
                    .filter_map(|i| dec.cidr(i, "source range"))
                    .collect_fitted(),
            )
        })
        .unwrap_or_default(),
        external_ips: opt(&f, "externalIPs", |n| {
            let items = dec.list(n, "externalIPs");
            Some(items.iter().filter_map(|i| dec.ipv4(i, "externalIP")).collect_fitted())
        })
        .unwrap_or_default(),
        external_traffic_policy: opt(&f, "externalTrafficPolicy", |n| {
            dec.word(n, "externalTrafficPolicy", &["Cluster", "Local"])
        }),
        internal_traffic_policy: opt(&f, "internalTrafficPolicy", |n| {
            dec.word(n, "internalTrafficPolicy", &["Cluster", "Local"])
        }),
        health_check_node_port: opt(&f, "healthCheckNodePort", |n| dec.port(n, "healthCheckNodePort")),
        session_affinity: opt(&f, "sessionAffinity", |n| {
            dec.word(n, "sessionAffinity", &["None", "ClientIP"])
        }),
        session_affinity_timeout: opt(&f, "sessionAffinityTimeoutSeconds", |n| {
            dec.integer(n, "sessionAffinityTimeoutSeconds", 1, 86400)
        }),
        endpoints: opt(&f, "endpoints", |n| {
            Some(crate::input::endpoints::decode_endpoints(dec, n))
        }),
        span: f.span,
    })
}

pub(super) fn decode_service_port(dec: &mut Decoder, node: &Node) -> Option<ServicePortSpec> {
    let known = ["name", "port", "targetPort", "nodePort", "protocol"];
    let f = dec.fields(node, "a service port", &known)?;
    Some(ServicePortSpec {
        name: opt(&f, "name", |n| dec.string(n, "port name")),
        port: dec
            .require(&f, "port", "a service port")
            .and_then(|n| dec.port(n, "port")),
        target_port: opt(&f, "targetPort", |n| target_port(dec, n, "targetPort")),
        // Range-checked by the model, which can say what the allowed range is for.
        node_port: opt(&f, "nodePort", |n| dec.integer(n, "nodePort", 0, 65535)),
        protocol: opt(&f, "protocol", |n| dec.word(n, "protocol", PROTOCOLS)),
        span: f.span,
    })
}
