//! `explain`'s NetworkPolicy section: who enforces policies, each policy with what it selects
//! and allows, and per pod the policies that select it for each direction.

use std::fmt::Write;

use super::style::{Style, indent};
use crate::compile::kube_router;
use crate::model::Cluster;
use crate::model::policy::{Direction, Enforcer, NetworkPolicy};

fn enforcement(c: &Cluster) -> String {
    match c.network_policy {
        Enforcer::KubeRouter => {
            "enforced by kube-router (v2.11.0): each pod's KUBE-POD-FW- chain jumps to the KUBE-NWPLCY- chain of every policy that selects it".to_owned()
        }
        Enforcer::None => "NOT enforced: nothing in this cluster enforces NetworkPolicies (networkPolicy: none), so they change nothing".to_owned(),
        other => format!("meant for {other}, whose enforcement k8snet does not model yet: traces do not apply them"),
    }
}

fn direction_text(np: &NetworkPolicy, d: Direction) -> Vec<String> {
    match np.rules(d) {
        None => Vec::new(),
        Some([]) => vec![format!("{}: deny all", d.name())],
        Some(rules) => rules
            .iter()
            .enumerate()
            .map(|(i, r)| format!("{} rule {i}: {}", d.name(), r.describe()))
            .collect(),
    }
}

pub(super) fn policies(out: &mut String, c: &Cluster, style: Style) {
    let enforced = c.network_policy == Enforcer::KubeRouter;
    let how = enforcement(c);
    let _ = writeln!(
        out,
        "{} {}",
        style.heading("NetworkPolicies"),
        if enforced { style.dim(&how) } else { style.bad(&how) }
    );
    let mut t = style.table(&["policy", "selects", "rules"]);
    for np in &c.policies {
        let mut rules = direction_text(np, Direction::Ingress);
        rules.extend(direction_text(np, Direction::Egress));
        let mut name = np.qualified_name();
        if enforced {
            name.push('\n');
            name.push_str(&kube_router::policy::policy_chain(np));
        }
        t.add_row(vec![
            name,
            format!("pods matching {} in {}", np.pod_selector, np.namespace),
            rules.join("\n"),
        ]);
    }
    let _ = writeln!(out, "{}\n", indent(&t.to_string(), 2));

    let mut t = style.table(&["pod", "ingress", "egress"]);
    for (i, p) in c.pods.iter().enumerate() {
        let (ingress, egress) = if p.host_network {
            let never = "hostNetwork: never selected".to_owned();
            (never.clone(), never)
        } else {
            let side = |d: Direction| {
                let names = c.policy_names_selecting(i, d);
                match (names.is_empty(), enforced) {
                    (true, _) => "open (no policy selects it)".to_owned(),
                    (false, true) => format!("isolated by {}", names.join(", ")),
                    (false, false) => format!("selected by {} (not enforced)", names.join(", ")),
                }
            };
            (side(Direction::Ingress), side(Direction::Egress))
        };
        t.add_row(vec![p.qualified_name(), ingress, egress]);
    }
    let _ = writeln!(out, "{}\n", indent(&t.to_string(), 2));
}
