//! Messages for a name that names nothing: the likely meaning when one is clearly closest, and
//! the names there are, as kubectl users expect (`no pod default/pod-b; did you mean pod-a?
//! pods in default: pod-a, web-1, web-2`).

use crate::model::Cluster;

/// How many names a message lists before it only counts the rest.
const LISTED: usize = 10;

/// The known name a typo most likely meant, if one is clearly closest.
///
/// A name counts as close when at most a third of its characters (and at least one) need an
/// edit, and no other name is as close. Two names that differ only in their numbers are
/// different things, not a typo of each other: `node-1` is not offered for `node-3`.
pub fn suggest<'a>(typed: &str, known: &[&'a str]) -> Option<&'a str> {
    let typed_lower = typed.to_lowercase();
    let typed_len = typed.chars().count();
    let near_enough = (typed_len / 3).max(1);
    let mut best: Option<(usize, &'a str)> = None;
    let mut tied = false;
    for &k in known {
        if typed_len.abs_diff(k.chars().count()) > near_enough || only_numbers_differ(typed, k) {
            continue;
        }
        let d = strsim::damerau_levenshtein(&typed_lower, &k.to_lowercase());
        if d > near_enough || d >= typed_len.max(1) {
            continue;
        }
        match best {
            Some((b, _)) if d > b => {}
            Some((b, _)) if d == b => tied = true,
            _ => {
                best = Some((d, k));
                tied = false;
            }
        }
    }
    best.filter(|_| !tied).map(|(_, k)| k)
}

fn only_numbers_differ(a: &str, b: &str) -> bool {
    let letters = |s: &str| -> String { s.chars().filter(|c| !c.is_ascii_digit()).collect() };
    a != b && a.chars().any(|c| c.is_ascii_digit()) && letters(a) == letters(b)
}

/// `a, b, c` or `a, b, … and 12 more`.
pub fn list(names: &[&str]) -> String {
    if names.len() > LISTED {
        format!("{} and {} more", names[..LISTED].join(", "), names.len() - LISTED)
    } else {
        names.join(", ")
    }
}

/// `; did you mean X? LABEL: a, b` when there is a likely meaning, else `; LABEL: a, b`.
fn hint(typed: &str, known: &[&str], label: &str) -> String {
    let listed = if known.is_empty() {
        "none".to_owned()
    } else {
        list(known)
    };
    match suggest(typed, known) {
        Some(s) => format!("; did you mean {s}? {label}: {listed}"),
        None => format!("; {label}: {listed}"),
    }
}

/// The namespaces in which a name of some kind exists, sorted, for a namespace with none.
fn namespaces<'a>(all: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = all.collect();
    v.sort_unstable();
    v.dedup();
    v
}

pub fn no_pod(c: &Cluster, ns: &str, name: &str) -> String {
    let here: Vec<&str> = c
        .pods
        .iter()
        .filter(|p| p.namespace == ns)
        .map(|p| p.name.as_str())
        .collect();
    let elsewhere: Vec<String> = c
        .pods
        .iter()
        .filter(|p| p.name == name && p.namespace != ns)
        .map(|p| format!("{}/{}", p.namespace, p.name))
        .collect();
    let mut msg = format!("no pod {ns}/{name}");
    if let Some(other) = elsewhere.first() {
        msg.push_str(&format!(
            "; did you mean {other}? (names without a namespace are looked up in {ns})"
        ));
        return msg;
    }
    if here.is_empty() {
        let all = namespaces(c.pods.iter().map(|p| p.namespace.as_str()));
        msg.push_str(&format!("; no pods in {ns} (namespaces with pods: {})", list(&all)));
    } else {
        msg.push_str(&hint(name, &here, &format!("pods in {ns}")));
    }
    msg
}

pub fn no_service(c: &Cluster, ns: &str, name: &str) -> String {
    let here: Vec<&str> = c
        .services
        .iter()
        .filter(|s| s.namespace == ns)
        .map(|s| s.name.as_str())
        .collect();
    let elsewhere: Vec<String> = c
        .services
        .iter()
        .filter(|s| s.name == name && s.namespace != ns)
        .map(|s| s.qualified_name())
        .collect();
    let mut msg = format!("no service {ns}/{name}");
    if let Some(other) = elsewhere.first() {
        msg.push_str(&format!(
            "; did you mean {other}? (names without a namespace are looked up in {ns})"
        ));
        return msg;
    }
    if here.is_empty() {
        let all = namespaces(c.services.iter().map(|s| s.namespace.as_str()));
        msg.push_str(&format!(
            "; no services in {ns} (namespaces with services: {})",
            list(&all)
        ));
    } else {
        msg.push_str(&hint(name, &here, &format!("services in {ns}")));
    }
    msg
}

pub fn no_node(c: &Cluster, name: &str) -> String {
    let known: Vec<&str> = c.nodes.iter().map(|n| n.name.as_str()).collect();
    format!("no node {name}{}", hint(name, &known, "nodes"))
}

pub fn no_ingress(c: &Cluster, ns: &str, name: &str) -> String {
    let here: Vec<&str> = c
        .ingresses
        .iter()
        .filter(|i| i.namespace == ns)
        .map(|i| i.name.as_str())
        .collect();
    format!(
        "no ingress {ns}/{name}{}",
        hint(name, &here, &format!("ingresses in {ns}"))
    )
}

/// A container the pod does not have, with the ones it has.
pub fn no_container(ns: &str, pod: &str, name: &str, known: &[&str]) -> String {
    format!(
        "pod {ns}/{pod} has no container {name}{}",
        hint(name, known, "containers")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clear_typo_is_suggested() {
        assert_eq!(suggest("wbe", &["web", "cart"]), Some("web"));
        assert_eq!(suggest("pod-b", &["pod-a", "web-1", "web-2"]), Some("pod-a"));
        assert_eq!(suggest("frnt", &["front", "cart"]), Some("front"));
    }

    #[test]
    fn numbers_are_not_typos() {
        assert_eq!(suggest("node-3", &["node-1", "node-2"]), None);
        assert_eq!(suggest("node-3", &["node-1"]), None);
        assert_eq!(suggest("web-10", &["web-1"]), None);
    }

    #[test]
    fn a_tie_or_a_far_name_gives_no_suggestion() {
        assert_eq!(suggest("pod-c", &["pod-a", "pod-b"]), None, "tie");
        assert_eq!(suggest("database", &["web", "cart"]), None);
        assert_eq!(suggest("ab", &["cd"]), None);
        assert_eq!(suggest("x", &["y"]), None);
    }

    #[test]
    fn a_name_in_another_namespace_is_pointed_at() {
        let scenario = crate::input::Source {
            name: "t".into(),
            text: crate::app::DEMO.replace("namespace: default              # default: default", "namespace: shop"),
        };
        let (spec, problems) = crate::input::parse(&scenario).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        let c = crate::model::build(&spec).unwrap().cluster;
        assert_eq!(
            no_pod(&c, "default", "pod-a"),
            "no pod default/pod-a; did you mean shop/pod-a? (names without a namespace are looked up in default)"
        );
        assert_eq!(
            no_pod(&c, "default", "web-3"),
            "no pod default/web-3; pods in default: web-1, web-2"
        );
        assert_eq!(no_node(&c, "node-3"), "no node node-3; nodes: node-1, node-2");
        assert_eq!(
            no_node(&c, "nod-1"),
            "no node nod-1; did you mean node-1? nodes: node-1, node-2"
        );
    }

    #[test]
    fn long_lists_are_cut() {
        let names: Vec<String> = (0..13).map(|i| format!("p{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        assert!(list(&refs).ends_with("p9 and 3 more"), "{}", list(&refs));
    }
}
