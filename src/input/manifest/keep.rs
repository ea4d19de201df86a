//! The fields of a kubectl JSON dump that k8snet reads, so the reader builds only those: at
//! Kubernetes' limits a dump is about 1 GB, mostly managedFields, status and pod specs that say
//! nothing about the network, and a tree of all of it would take several times the file's size.
//!
//! Keys are kept by name wherever they stand; under a key whose value is user data (labels,
//! selectors, the k8snet header's blocks) everything is kept. The decoder reads the same
//! fields from a full tree (YAML, or JSON not written by kubectl), so both give the same objects.

use crate::input::json::Keep;

pub fn kubernetes(key: &str) -> Keep {
    match key {
        "labels" | "selector" | "matchLabels" | "podSelector" | "namespaceSelector" | "cluster" | "traces"
        | "ingressControllers" => Keep::Subtree(None),
        "annotations" => Keep::Subtree(Some(annotation)),
        "apiVersion"
        | "kind"
        | "items"
        | "metadata"
        | "name"
        | "namespace"
        | "deletionTimestamp"
        | "spec"
        | "status"
        | "podCIDR"
        | "podCIDRs"
        | "addresses"
        | "address"
        | "type"
        | "nodeName"
        | "hostNetwork"
        | "containers"
        | "ports"
        | "containerPort"
        | "protocol"
        | "podIP"
        | "podIPs"
        | "ip"
        | "phase"
        | "conditions"
        | "clusterIP"
        | "targetPort"
        | "port"
        | "nodePort"
        | "externalTrafficPolicy"
        | "internalTrafficPolicy"
        | "sessionAffinity"
        | "sessionAffinityConfig"
        | "clientIP"
        | "timeoutSeconds"
        | "loadBalancerSourceRanges"
        | "healthCheckNodePort"
        | "externalIPs"
        | "loadBalancer"
        | "ingress"
        | "endpoints"
        | "addressType"
        | "ready"
        | "serving"
        | "terminating"
        | "ingressClassName"
        | "defaultBackend"
        | "service"
        | "number"
        | "rules"
        | "host"
        | "http"
        | "paths"
        | "path"
        | "pathType"
        | "backend"
        | "controller"
        | "policyTypes"
        | "egress"
        | "from"
        | "to"
        | "ipBlock"
        | "cidr"
        | "except"
        | "endPort" => Keep::Field,
        _ => Keep::Skip,
    }
}

/// The one annotation read: the class of an Ingress written before `ingressClassName`.
fn annotation(key: &str) -> Keep {
    if key == "kubernetes.io/ingress.class" {
        Keep::Field
    } else {
        Keep::Skip
    }
}

/// kubectl writes an object's keys in order, `apiVersion` first: a JSON text that starts so is
/// read with [`kubernetes`]. Anything else (a scenario) is read whole.
pub fn looks_like_kubectl_json(text: &str) -> bool {
    let rest = text.trim_start_matches('\u{feff}').trim_start();
    rest.strip_prefix('{')
        .map(str::trim_start)
        .is_some_and(|r| r.starts_with("\"apiVersion\"") || r.starts_with("\"kind\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::json::{read, read_filtered};
    use crate::input::tree::Value;

    #[test]
    fn only_read_fields_are_built_and_the_rest_is_still_checked() {
        let text = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "managedFields": [{"f:x": {}}],
            "labels": {"any-key": "kept"}, "annotations": {"big": "x", "kubernetes.io/ingress.class": "nginx"}}}"#;
        assert!(looks_like_kubectl_json(text));
        let tree = read_filtered(text, kubernetes).unwrap();
        let metadata = crate::input::manifest::get(&tree, "metadata").unwrap();
        let Value::Map(entries) = &metadata.value else {
            panic!("a mapping")
        };
        let keys: Vec<String> = entries
            .iter()
            .map(|(k, _)| match &k.value {
                Value::Str(s) => s.clone(),
                _ => String::new(),
            })
            .collect();
        assert_eq!(keys, ["name", "labels", "annotations"]);
        let annotations = crate::input::manifest::get(metadata, "annotations").unwrap();
        assert!(matches!(&annotations.value, Value::Map(m) if m.len() == 1));
        // Positions are the full reader's.
        let full = read(text).unwrap();
        let name = |t| crate::input::manifest::at(t, &["metadata", "name"]).unwrap().pos;
        assert_eq!(name(&tree), name(&full));
        for broken in [
            r#"{"apiVersion": "v1", "managedFields": [1,]}"#,
            r#"{"apiVersion": "v1", "x": "\q"}"#,
        ] {
            let e = read_filtered(broken, kubernetes).unwrap_err();
            assert!(e.message.starts_with("invalid JSON"), "{}", e.message);
            assert_eq!(e.at.map(|s| s.pos.line), Some(1));
        }
        assert!(!looks_like_kubectl_json(r#"{"cluster": {}}"#));
    }
}
