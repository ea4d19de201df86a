//! Decoding a scenario's Ingresses and trace cases.

use super::*;

pub(super) fn decode_backend(dec: &mut Decoder, f: &Fields<'_>, what: &str) -> BackendSpec {
    BackendSpec {
        service: dec
            .require(f, "service", what)
            .and_then(|n| dec.string(n, "backend service")),
        port: dec
            .require(f, "port", what)
            .and_then(|n| target_port(dec, n, "backend port")),
        span: f.span,
    }
}

pub(super) fn decode_ingress(dec: &mut Decoder, node: &Node) -> Option<IngressSpec> {
    let known = ["name", "namespace", "controller", "defaultBackend", "rules"];
    let f = dec.fields(node, "an ingress", &known)?;
    let default_backend = opt(&f, "defaultBackend", |n| {
        let bf = dec.fields(n, "a default backend", &["service", "port"])?;
        Some(decode_backend(dec, &bf, "a default backend"))
    });
    let mut rules = Vec::new();
    if let Some(list) = f.get("rules") {
        for r in dec.list(list, "`rules`") {
            let Some(rf) = dec.fields(r, "an ingress rule", &["host", "paths"]) else {
                continue;
            };
            let mut paths = Vec::new();
            if let Some(pl) = dec.require(&rf, "paths", "an ingress rule") {
                for p in dec.list(pl, "`paths`") {
                    let known = ["path", "pathType", "service", "port"];
                    let Some(pf) = dec.fields(p, "an ingress path", &known) else {
                        continue;
                    };
                    paths.push(IngressPathSpec {
                        path: dec
                            .require(&pf, "path", "an ingress path")
                            .and_then(|n| dec.string(n, "path")),
                        path_type: opt(&pf, "pathType", |n| {
                            dec.word(n, "pathType", &["Exact", "Prefix", "ImplementationSpecific"])
                        }),
                        backend: decode_backend(dec, &pf, "an ingress path"),
                    });
                }
            }
            rules.push(IngressRuleSpec {
                host: opt(&rf, "host", |n| dec.string(n, "host")),
                paths,
            });
        }
    }
    Some(IngressSpec {
        name: dec
            .require(&f, "name", "an ingress")
            .and_then(|n| dec.string(n, "ingress name")),
        namespace: opt(&f, "namespace", |n| dec.string(n, "namespace")),
        controller: dec
            .require(&f, "controller", "an ingress")
            .and_then(|n| dec.string(n, "controller")),
        default_backend,
        rules,
        span: f.span,
    })
}

pub(crate) fn decode_trace(dec: &mut Decoder, node: &Node) -> Option<TraceSpec> {
    let known = [
        "from",
        "to",
        "port",
        "protocol",
        "expect",
        "namespace",
        "container",
        "endpoint",
        "viaNode",
        "allEndpoints",
    ];
    let f = dec.fields(node, "a trace case", &known)?;
    let what = "a trace case";
    let expect = dec.require(&f, "expect", what);
    // `expect: {web-1: delivered, web-2: no_listener}`: a verdict for each endpoint branch.
    let expect_branches = expect.and_then(|n| match &n.value {
        crate::input::tree::Value::Map(entries) => Some(Sp::new(
            entries
                .iter()
                .filter_map(|(k, v)| Some((dec.string(k, "endpoint")?, dec.string(v, "expected verdict")?)))
                .collect(),
            crate::input::decode::span_of(n),
        )),
        _ => None,
    });
    Some(TraceSpec {
        from: dec
            .require(&f, "from", what)
            .and_then(|n| dec.string(n, "trace source")),
        to: dec
            .require(&f, "to", what)
            .and_then(|n| dec.string(n, "trace destination")),
        port: opt(&f, "port", |n| dec.port(n, "port")),
        protocol: opt(&f, "protocol", |n| {
            dec.word(n, "protocol", &["tcp", "udp", "sctp", "icmp"])
        }),
        expect: if expect_branches.is_some() {
            None
        } else {
            expect.and_then(|n| dec.string(n, "expected verdict"))
        },
        namespace: opt(&f, "namespace", |n| dec.string(n, "namespace")),
        container: opt(&f, "container", |n| dec.string(n, "container")),
        endpoint: opt(&f, "endpoint", |n| dec.string(n, "endpoint")),
        via_node: opt(&f, "viaNode", |n| dec.string(n, "viaNode")),
        all_endpoints: f
            .get("allEndpoints")
            .and_then(|n| Some(Sp::new(dec.bool(n, "allEndpoints")?, crate::input::decode::span_of(n)))),
        expect_branches,
        span: f.span,
    })
}
