//! NetworkPolicies and namespaces checked as the API server checks them
//! (`ValidateNetworkPolicySpec`, `ValidateLabelSelector`), with its defaults applied: a policy
//! without `policyTypes` has Ingress, and Egress too when it lists egress rules.

use std::collections::BTreeMap;

use super::{Validator, namespace, protocol, syntax};
use crate::input::decode::Sp;
use crate::input::policy::{NetworkPolicySpec, PeerSpec, PortSpec, RuleSpec, SelectorSpec};
use crate::input::spec::{Scenario, TargetPortSpec};
use crate::model::TargetPort;
use crate::model::policy::{
    Expression, IpBlock, NAME_LABEL, Namespace, NetworkPolicy, Operator, Peer, PolicyPort, PolicyRule, Selector,
};

impl Validator {
    pub(super) fn policies(&mut self, s: &Scenario) -> Vec<NetworkPolicy> {
        let mut out: Vec<NetworkPolicy> = Vec::new();
        let mut seen: BTreeMap<(String, String), u64> = BTreeMap::new();
        for p in &s.network_policies {
            let name = self.name(&p.name, "network policy name", true);
            let ns = namespace(self, &p.namespace);
            let Some(spec) = &p.spec else { continue };
            let built = self.policy_spec(spec);
            if let (Some(name), Some(ns)) = (&name, &ns)
                && let Some(earlier) = seen.insert((ns.clone(), name.value.clone()), p.span.pos.line)
            {
                self.error(
                    name.span,
                    format!(
                        "duplicate network policy `{ns}/{}` (also on line {earlier})",
                        name.value
                    ),
                    "policy names are unique within a namespace",
                );
            }
            if let (Some(name), Some(ns), Some((pod_selector, ingress, egress))) = (name, ns, built) {
                out.push(NetworkPolicy {
                    namespace: ns,
                    name: name.value,
                    pod_selector,
                    ingress,
                    egress,
                    line: p.span.pos.line,
                });
            }
        }
        out.shrink_to_fit();
        out
    }

    /// Every namespace: those listed, then those a pod, Service or policy uses, each labelled
    /// with its name as the API server labels it.
    pub(super) fn namespaces<'a>(&mut self, s: &Scenario, used: impl Iterator<Item = &'a String>) -> Vec<Namespace> {
        let mut by_name: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for n in &s.namespaces {
            let Some(name) = self.name(&n.name, "namespace name", false) else {
                continue;
            };
            let mut labels = self.labels(&n.labels);
            if let Some((_, v)) = n.labels.iter().find(|(k, _)| k.value == NAME_LABEL)
                && v.value != name.value
            {
                self.error(
                    v.span,
                    format!("{NAME_LABEL} is `{}`, but the namespace is `{}`", v.value, name.value),
                    "the API server sets this label to the namespace's name; leave it out",
                );
            }
            labels.retain(|(k, _)| k != NAME_LABEL);
            if by_name.insert(name.value.clone(), labels).is_some() {
                self.error(
                    name.span,
                    format!("duplicate namespace `{}`", name.value),
                    "list each namespace once",
                );
            }
        }
        for ns in used {
            by_name.entry(ns.clone()).or_default();
        }
        by_name
            .into_iter()
            .map(|(name, mut labels)| {
                labels.push((NAME_LABEL.to_owned(), name.clone()));
                labels.sort();
                Namespace { name, labels }
            })
            .collect()
    }

    #[allow(clippy::type_complexity)]
    fn policy_spec(
        &mut self,
        spec: &NetworkPolicySpec,
    ) -> Option<(Selector, Option<Vec<PolicyRule>>, Option<Vec<PolicyRule>>)> {
        let pod_selector = spec.pod_selector.as_ref().map(|s| self.selector(s));
        let ingress: Option<Vec<PolicyRule>> = spec
            .ingress
            .as_ref()
            .map(|rules| rules.iter().filter_map(|r| self.rule(r)).collect());
        let egress: Option<Vec<PolicyRule>> = spec
            .egress
            .as_ref()
            .map(|rules| rules.iter().filter_map(|r| self.rule(r)).collect());
        let (has_ingress, has_egress) = match &spec.policy_types {
            Some(types) => {
                if types.len() > 2 {
                    self.error(
                        types[2].span,
                        "a policy has at most two policyTypes",
                        "write Ingress, Egress or both, once each",
                    );
                }
                let mut seen = Vec::new();
                for t in types {
                    if seen.contains(&t.value) {
                        self.error(
                            t.span,
                            format!("policy type {} is listed twice", t.value),
                            "list it once",
                        );
                    }
                    seen.push(t.value.clone());
                }
                (
                    types.iter().any(|t| t.value == "Ingress"),
                    types.iter().any(|t| t.value == "Egress"),
                )
            }
            // The API's default: Ingress always, Egress when the policy has egress rules.
            None => (true, spec.egress.as_ref().is_some_and(|e| !e.is_empty())),
        };
        let pod_selector = pod_selector??;
        Some((
            pod_selector,
            has_ingress.then(|| ingress.unwrap_or_default()),
            has_egress.then(|| egress.unwrap_or_default()),
        ))
    }

    fn rule(&mut self, r: &RuleSpec) -> Option<PolicyRule> {
        let peers: Option<Vec<Peer>> = r
            .peers
            .as_ref()
            .map(|ps| ps.iter().filter_map(|p| self.peer(p)).collect());
        let ports: Vec<PolicyPort> = r.ports.iter().filter_map(|p| self.policy_port(p)).collect();
        // An empty `from: []` is the same as no `from`: every peer, as the API documents.
        let peers = peers.filter(|p| !p.is_empty() || r.peers.as_ref().is_some_and(|ps| !ps.is_empty()));
        Some(PolicyRule {
            peers,
            ports,
            line: r.span.pos.line,
        })
    }

    fn peer(&mut self, p: &PeerSpec) -> Option<Peer> {
        let count = [
            p.pod_selector.is_some(),
            p.namespace_selector.is_some(),
            p.ip_block.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if count == 0 {
            self.error(
                p.span,
                "a peer must name podSelector, namespaceSelector or ipBlock",
                "an empty item selects nothing; to allow every peer, leave out `from`/`to` altogether",
            );
            return None;
        }
        if count > 1 && p.ip_block.is_some() {
            self.error(
                p.span,
                "a peer may not have both ipBlock and a selector",
                "write the ipBlock as an item of its own (items are OR-ed)",
            );
            return None;
        }
        let ip_block = match &p.ip_block {
            Some(b) => {
                let cidr = b.cidr.as_ref()?.value;
                let mut except = Vec::new();
                for e in &b.except {
                    if !(cidr.contains(&e.value.network()) && e.value.prefix_len() > cidr.prefix_len()) {
                        self.error(
                            e.span,
                            format!("except {} is not a strict subset of cidr {cidr}", e.value),
                            "each `except` block must lie inside `cidr` and be smaller than it",
                        );
                        continue;
                    }
                    except.push(e.value);
                }
                Some(IpBlock { cidr, except })
            }
            None => None,
        };
        Some(Peer {
            pods: p.pod_selector.as_ref().and_then(|s| self.selector(s)),
            namespaces: p.namespace_selector.as_ref().and_then(|s| self.selector(s)),
            ip_block,
        })
    }

    fn selector(&mut self, s: &SelectorSpec) -> Option<Selector> {
        let labels = self.labels(&s.match_labels);
        let mut expressions = Vec::new();
        for e in &s.match_expressions {
            let (Some(key), Some(op)) = (&e.key, &e.operator) else {
                continue;
            };
            if !self.syntax(key, "label key", syntax::label_key, "a label key such as `app`") {
                continue;
            }
            let operator = match op.value.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                _ => Operator::DoesNotExist,
            };
            let needs_values = matches!(operator, Operator::In | Operator::NotIn);
            if needs_values && e.values.is_empty() {
                self.error(
                    op.span,
                    format!("`values` must be given when the operator is {}", op.value),
                    "list the label values to compare with",
                );
                continue;
            }
            if !needs_values && !e.values.is_empty() {
                self.error(
                    e.values[0].span,
                    format!("`values` may not be given when the operator is {}", op.value),
                    "Exists and DoesNotExist look only at the key; remove `values`",
                );
                continue;
            }
            let values = e
                .values
                .iter()
                .filter(|v| self.syntax(v, "label value", syntax::label_value, "a label value such as `web`"))
                .map(|v| v.value.clone())
                .collect();
            expressions.push(Expression {
                key: key.value.clone(),
                operator,
                values,
            });
        }
        Some(Selector { labels, expressions })
    }

    fn policy_port(&mut self, p: &PortSpec) -> Option<PolicyPort> {
        let port = match &p.port {
            Some(Sp {
                value: TargetPortSpec::Name(name),
                span,
            }) => {
                if !self.port_name(&Sp::new(name.clone(), *span)) {
                    return None;
                }
                Some(TargetPort::Name(name.clone()))
            }
            Some(Sp {
                value: TargetPortSpec::Number(n),
                ..
            }) => Some(TargetPort::Number(*n)),
            None => None,
        };
        let end_port = match (&p.end_port, &port) {
            (None, _) => None,
            (Some(end), Some(TargetPort::Number(n))) => {
                if end.value < i64::from(*n) {
                    self.error(
                        end.span,
                        format!("endPort {} is below port {n}", end.value),
                        "endPort must be at least `port`",
                    );
                    return None;
                }
                Some(end.value as u16)
            }
            (Some(end), Some(TargetPort::Name(_))) => {
                self.error(
                    end.span,
                    "endPort may not be given when `port` is a name",
                    "give `port` as a number, or drop endPort",
                );
                return None;
            }
            (Some(end), None) => {
                self.error(
                    end.span,
                    "endPort may not be given without `port`",
                    "give the first port of the range as `port`",
                );
                return None;
            }
        };
        Some(PolicyPort {
            protocol: protocol(&p.protocol),
            port,
            end_port,
        })
    }
}
