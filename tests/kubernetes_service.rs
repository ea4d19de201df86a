//! The `kubernetes` Service every cluster has: added with the API server's pod when the file
//! does not list it, taken from the file when it does.

use k8snet::input::{self, Source};
use k8snet::model::Cluster;

const BASE: &str = "cluster:
  nodeNetwork: 10.100.0.0/24
  podNetwork: 10.0.0.0/14
  serviceNetwork: 10.3.240.0/20
nodes:
  - {name: node-1, ip: 10.100.0.2, podCIDR: 10.0.1.0/24}
  - {name: node-2, ip: 10.100.0.3, podCIDR: 10.0.2.0/24}
";

fn cluster(text: &str) -> Cluster {
    let source = Source {
        name: "t".into(),
        text: text.into(),
    };
    let (spec, diags) = input::parse(&source).expect("the scenario parses");
    assert!(diags.is_empty(), "{diags:?}");
    k8snet::model::build(&spec).expect("the scenario is valid").cluster
}

fn kubernetes(c: &Cluster) -> &k8snet::model::Service {
    &c.services[c
        .service_named("default", "kubernetes")
        .expect("default/kubernetes exists")]
}

#[test]
fn every_cluster_has_it_on_the_first_service_address() {
    let c = cluster(BASE);
    let s = kubernetes(&c);
    assert_eq!(s.cluster_ip, Some("10.3.240.1".parse().unwrap()));
    assert_eq!((s.ports[0].name.as_deref(), s.ports[0].port), (Some("https"), 443));
    let e = &s.ports[0].endpoints;
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].ip, e[0].port), ("10.100.0.2".parse().unwrap(), 6443));
    let pod = &c.pods[e[0].pod];
    assert_eq!(pod.qualified_name(), "kube-system/kube-apiserver-node-1");
    assert!(pod.host_network);
}

#[test]
fn api_server_field_moves_it() {
    let c = cluster(&BASE.replace(
        "  serviceNetwork: 10.3.240.0/20\n",
        "  serviceNetwork: 10.3.240.0/20\n  apiServer: {node: node-2, port: 8443}\n",
    ));
    let e = &kubernetes(&c).ports[0].endpoints[0];
    assert_eq!((e.ip, e.port), ("10.100.0.3".parse().unwrap(), 8443));
}

#[test]
fn a_declared_one_without_selector_leads_to_the_api_server() {
    let text = format!(
        "{BASE}services:\n  - {{name: kubernetes, clusterIP: 10.3.240.1, ports: [{{name: https, port: 443, targetPort: 6443}}]}}\n"
    );
    let c = cluster(&text);
    assert_eq!(c.services.iter().filter(|s| s.name == "kubernetes").count(), 1);
    let e = &kubernetes(&c).ports[0].endpoints;
    assert_eq!(
        e.iter().map(|e| (e.ip.to_string(), e.port)).collect::<Vec<_>>(),
        [("10.100.0.2".to_owned(), 6443)]
    );
}

#[test]
fn a_listed_api_server_pod_is_the_endpoint_and_listens_on_its_port() {
    // As `kubectl get pods -A` prints kubeadm's static pod: no ports declared, on node-2.
    let text = format!(
        "{BASE}pods:\n  - {{name: kube-apiserver-node-2, namespace: kube-system, node: node-2, hostNetwork: true, containers: [{{name: kube-apiserver}}]}}\n"
    );
    let c = cluster(&text);
    assert_eq!(c.pods.len(), 1, "no second API server pod is added");
    let e = &kubernetes(&c).ports[0].endpoints[0];
    assert_eq!((e.pod, e.ip, e.port), (0, "10.100.0.3".parse().unwrap(), 6443));
    assert!(c.pods[0].listeners().any(|(_, p)| p.port == 6443));
}
