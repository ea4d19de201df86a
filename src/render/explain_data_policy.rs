//! `explain -o json`'s NetworkPolicy parts: who enforces policies, each policy with what it
//! selects and allows, and for each pod the policies that select it in each direction, as the
//! text's NetworkPolicies section shows them.

use serde_json::{Value, json};

use crate::compile::kube_router;
use crate::model::Cluster;
use crate::model::policy::{Direction, Enforcer, NetworkPolicy};

/// Whether traces apply the policies: only kube-router's enforcement is modelled.
fn modelled(c: &Cluster) -> bool {
    c.network_policy == Enforcer::KubeRouter
}

fn rules(np: &NetworkPolicy, d: Direction) -> Value {
    match np.rules(d) {
        None => Value::Null,
        Some(rules) => rules.iter().map(|r| json!(r.describe())).collect(),
    }
}

/// The cluster's enforcement and, when `whole`, every policy.
pub fn network_policies(c: &Cluster, whole: bool) -> Value {
    let policies: Vec<Value> = c
        .policies
        .iter()
        .filter(|_| whole)
        .map(|np| {
            json!({
                "name": np.qualified_name(),
                "pod_selector": np.pod_selector.to_string(),
                "chain": modelled(c).then(|| kube_router::policy::policy_chain(np)),
                "ingress": rules(np, Direction::Ingress),
                "egress": rules(np, Direction::Egress),
            })
        })
        .collect();
    json!({
        "enforcer": c.network_policy.name(),
        "modelled": modelled(c),
        "policies": policies,
    })
}

/// The policies that select pod `pod` in each direction, and whether it is isolated there: a
/// policy selects it and something in the cluster enforces policies.
pub fn pod_policies(c: &Cluster, pod: usize) -> Value {
    let side = |d: Direction| {
        let names = c.policy_names_selecting(pod, d);
        json!({
            "isolated": !names.is_empty() && c.network_policy != Enforcer::None,
            "policies": names,
        })
    };
    json!({ "ingress": side(Direction::Ingress), "egress": side(Direction::Egress) })
}
