//! Ingresses and the trace cases a scenario pins for CI.

use std::collections::HashMap;

use super::{Validator, namespace, syntax};
use crate::input::decode::Sp;
use crate::input::spec::{self, Scenario, TargetPortSpec};
use crate::model::*;

/// The cluster's Services, found by namespace and name without a scan.
struct Services<'a> {
    all: &'a [Service],
    by_name: HashMap<(&'a str, &'a str), usize>,
}

impl Services<'_> {
    fn find(&self, namespace: &str, name: &str) -> Option<usize> {
        self.by_name.get(&(namespace, name)).copied()
    }
}

fn port_text(port: &TargetPortSpec) -> String {
    match port {
        TargetPortSpec::Number(n) => n.to_string(),
        TargetPortSpec::Name(n) => n.clone(),
    }
}

impl Validator {
    fn backend(&mut self, b: &spec::BackendSpec, namespace: &str, services: &Services<'_>) -> Option<Backend> {
        let name = b.service.as_ref()?;
        let port = b.port.as_ref()?;
        let Some(si) = services.find(namespace, &name.value) else {
            // Legal: the API does not check the reference, and ingress-nginx answers 503.
            return Some(Backend::Missing {
                service: format!("{namespace}/{}", name.value),
                port: port_text(&port.value),
                exists: false,
            });
        };
        if let TargetPortSpec::Name(n) = &port.value
            && !self.port_name(&Sp::new(n.clone(), port.span))
        {
            return None;
        }
        let found = services.all[si].ports.iter().position(|p| match &port.value {
            TargetPortSpec::Number(n) => p.port == *n,
            TargetPortSpec::Name(n) => p.name.as_deref() == Some(n.as_str()),
        });
        let Some(found) = found else {
            // Legal too, and answered with 503 as for a Service that does not exist; most
            // likely a mistake, so it is pointed out.
            let have: Vec<String> = services.all[si]
                .ports
                .iter()
                .map(|p| p.name.clone().unwrap_or_else(|| p.port.to_string()))
                .collect();
            self.diagnostics.push(
                crate::diagnostic::Diagnostic::warning(format!(
                    "service `{namespace}/{}` has no port {}",
                    name.value,
                    port_text(&port.value)
                ))
                .at(port.span)
                .help(format!(
                    "ingress-nginx answers 503 for this backend; the Service's ports are: {}",
                    have.join(", ")
                )),
            );
            return Some(Backend::Missing {
                service: format!("{namespace}/{}", name.value),
                port: port_text(&port.value),
                exists: true,
            });
        };
        Some(Backend::Service {
            service: si,
            port: found,
        })
    }

    pub(super) fn ingresses(&mut self, s: &Scenario, services: &[Service]) -> Vec<Ingress> {
        let mut by_name = HashMap::new();
        for (i, s) in services.iter().enumerate() {
            // The first of two Services with one name wins, as a scan would find it.
            by_name.entry((s.namespace.as_str(), s.name.as_str())).or_insert(i);
        }
        let services = &Services { all: services, by_name };
        let mut out: Vec<Ingress> = Vec::new();
        for ing in &s.ingresses {
            let name = self.name(&ing.name, "ingress name", true);
            let Some(namespace) = namespace(self, &ing.namespace) else {
                continue;
            };
            let controller = ing.controller.as_ref().and_then(|c| {
                let (ns, n) = c.split_once('/').unwrap_or(("default", c.as_str()));
                let found = services.find(ns, n);
                if found.is_none() {
                    self.error(
                        c.span,
                        format!(
                            "controller service `{}` does not exist",
                            crate::diagnostic::shorten(&format!("{ns}/{n}"))
                        ),
                        "name the Service in front of the ingress controller pods as namespace/name",
                    );
                }
                found
            });
            let default_backend = ing
                .default_backend
                .as_ref()
                .and_then(|b| self.backend(b, &namespace, services));
            let mut rules = Vec::new();
            for r in &ing.rules {
                if let Some(h) = &r.host {
                    self.syntax(
                        h,
                        "ingress host",
                        syntax::ingress_host,
                        "write a DNS name such as shop.example.com, or *.example.com for a wildcard of one label",
                    );
                }
                let mut paths = Vec::new();
                for p in &r.paths {
                    let Some(path) = &p.path else { continue };
                    let path_type = match p.path_type.as_ref().map(|t| t.as_str()) {
                        Some("Exact") => PathType::Exact,
                        Some("ImplementationSpecific") => PathType::ImplementationSpecific,
                        _ => PathType::Prefix,
                    };
                    let rule = if path_type == PathType::ImplementationSpecific {
                        |p: &str| syntax::ingress_path(p, false)
                    } else {
                        |p: &str| syntax::ingress_path(p, true)
                    };
                    self.syntax(
                        path,
                        "ingress path",
                        rule,
                        "ingress paths are absolute and plain, for example /cart",
                    );
                    if let Some(backend) = self.backend(&p.backend, &namespace, services) {
                        paths.push(IngressPath {
                            path: path.value.clone(),
                            path_type,
                            backend,
                        });
                    }
                }
                rules.push(IngressRule {
                    host: r.host.as_ref().map(|h| h.value.clone()),
                    paths,
                });
            }
            if let (Some(name), Some(controller)) = (name, controller) {
                out.push(Ingress {
                    namespace,
                    name: name.value,
                    controller,
                    default_backend,
                    rules,
                });
            }
        }
        out
    }

    pub(super) fn traces(&mut self, s: &Scenario) -> Vec<TraceCase> {
        let mut out = Vec::new();
        for t in &s.traces {
            let verdicts = t
                .expect
                .iter()
                .chain(t.expect_branches.iter().flat_map(|b| b.value.iter().map(|(_, v)| v)));
            let mut bad = false;
            for e in verdicts {
                if crate::trace::Verdict::from_name(&e.value).is_none() {
                    let names: Vec<&str> = crate::trace::Verdict::ALL.iter().map(|v| v.name()).collect();
                    let help = crate::input::decode::did_you_mean(&e.value, &names, "verdicts are");
                    self.error(
                        e.span,
                        format!("`{}` is not a verdict", crate::diagnostic::shorten(&e.value)),
                        help,
                    );
                    bad = true;
                }
            }
            let all_endpoints = t.all_endpoints.as_ref().is_some_and(|a| a.value);
            if let Some(b) = &t.expect_branches
                && !all_endpoints
            {
                self.error(
                    b.span,
                    "an expectation per endpoint needs `allEndpoints: true`".to_owned(),
                    "add `allEndpoints: true` to trace every branch, or give one verdict".to_owned(),
                );
                bad = true;
            }
            if let (Some(a), Some(_)) = (&t.all_endpoints, &t.endpoint)
                && a.value
            {
                self.error(
                    a.span,
                    "`allEndpoints` and `endpoint` cannot both be given".to_owned(),
                    "`endpoint` follows one branch, `allEndpoints` every branch: keep one".to_owned(),
                );
                bad = true;
            }
            if bad {
                continue;
            }
            let expect = t.expect.clone().or_else(|| {
                t.expect_branches
                    .as_ref()
                    .map(|b| crate::input::decode::Sp::new(String::new(), b.span))
            });
            if let (Some(from), Some(to), Some(expect)) = (&t.from, &t.to, &expect) {
                let text = |t: &crate::input::decode::Sp<String>| crate::model::CaseText {
                    value: t.value.clone(),
                    at: t.span,
                };
                out.push(TraceCase {
                    from: text(from),
                    to: text(to),
                    namespace: t.namespace.as_ref().map(text),
                    container: t.container.as_ref().map(text),
                    endpoint: t.endpoint.as_ref().map(text),
                    via_node: t.via_node.as_ref().map(text),
                    port: t.port.as_ref().map(|p| p.value),
                    protocol: t.protocol.as_ref().and_then(|p| Protocol::of_packet(p)),
                    expect: expect.value.clone(),
                    all_endpoints,
                    branches: t
                        .expect_branches
                        .iter()
                        .flat_map(|b| b.value.iter().map(|(k, v)| (text(k), v.value.clone())))
                        .collect(),
                    line: t.span.pos.line,
                });
            }
        }
        out
    }
}
