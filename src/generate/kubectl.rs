//! A plan written as `kubectl get nodes,pods,services,endpointslices -A -o json` prints it: one
//! `v1` `List` with every object as the API server returns it, managedFields, annotations,
//! ownerReferences, the whole status and all. At Kubernetes' limits (5,000 nodes, 150,000 pods,
//! 10,000 Services) it is about 1 GB, the size of a real dump, and what the loading benchmark
//! reads.
//!
//! The layout is the scenario's (docs/generate.md), names included, so the same queries run on
//! both; what the API does not hold (the networks) is left for k8snet to infer. Every pod is a
//! ReplicaSet's, with its `generateName` and owner, and every Service has its EndpointSlice.

use serde_json::{Value, json};

use super::{CONTAINER_PORT, Plan, PodAt, SERVICE_PORT};

const TIME: &str = "2026-11-30T09:12:44Z";

/// The List, as text.
pub fn list(plan: &Plan) -> String {
    let o = plan.options();
    let pods = u64::from(o.nodes) * u64::from(o.pods_per_node);
    // About 6.5 kB a pod, the bulk of the file.
    let mut out = String::with_capacity((pods as usize).saturating_mul(6_600) + (1 << 16));
    out.push_str("{\n    \"apiVersion\": \"v1\",\n    \"items\": [\n");
    let mut first = true;
    let mut item = |out: &mut String, v: Value| {
        if !std::mem::take(&mut first) {
            out.push_str(",\n");
        }
        write_indented(out, &v);
    };
    for n in 0..o.nodes {
        item(&mut out, node(plan, n));
    }
    for node in 0..o.nodes {
        for index in 0..o.pods_per_node {
            item(&mut out, pod(plan, PodAt { node, index }));
        }
    }
    for s in 0..plan.services() {
        item(&mut out, service(plan, s));
    }
    for s in 0..plan.services() {
        item(&mut out, slice(plan, s));
    }
    out.push_str(
        "\n    ],\n    \"kind\": \"List\",\n    \"metadata\": {\n        \"resourceVersion\": \"\"\n    }\n}\n",
    );
    out
}

/// An item as kubectl indents it: four spaces a level, two levels in.
fn write_indented(out: &mut String, v: &Value) {
    let mut bytes = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut bytes, formatter);
    if serde::Serialize::serialize(v, &mut ser).is_err() {
        return;
    }
    let text = String::from_utf8_lossy(&bytes);
    for (i, line) in text.lines().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str("        ");
        out.push_str(line);
    }
}

/// A uid that is the same on every run.
fn uid(kind: u32, n: u64) -> String {
    let x = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(kind);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        x >> 32,
        (x >> 16) & 0xffff,
        x & 0xfff,
        (x >> 20) & 0xfff,
        x & 0xffff_ffff_ffff
    )
}

fn managed_fields(manager: &str, fields: Value) -> Value {
    json!([{
        "apiVersion": "v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
        "manager": manager,
        "operation": "Update",
        "time": TIME
    }])
}

fn node(plan: &Plan, n: u32) -> Value {
    let name = plan.node_name(n);
    let cidr = plan.pod_cidr(n).to_string();
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true"
            },
            "creationTimestamp": TIME,
            "labels": {
                "beta.kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "node.kubernetes.io/instance-type": "n2-standard-8",
                "topology.kubernetes.io/region": "europe-west1",
                "topology.kubernetes.io/zone": "europe-west1-b"
            },
            "managedFields": managed_fields("kubelet", json!({"f:metadata": {"f:annotations": {}, "f:labels": {}}, "f:spec": {"f:podCIDR": {}, "f:podCIDRs": {}}, "f:status": {"f:addresses": {}, "f:allocatable": {}, "f:capacity": {}, "f:conditions": {}}})),
            "name": name,
            "resourceVersion": (1_000_000 + n).to_string(),
            "uid": uid(1, u64::from(n))
        },
        "spec": {
            "podCIDR": cidr,
            "podCIDRs": [cidr],
            "providerID": format!("gce://generated/europe-west1-b/{name}")
        },
        "status": {
            "addresses": [
                {"address": plan.node_ip(n).to_string(), "type": "InternalIP"},
                {"address": name, "type": "Hostname"}
            ],
            "allocatable": {"cpu": "7910m", "ephemeral-storage": "47060071478", "memory": "29574572Ki", "pods": "110"},
            "capacity": {"cpu": "8", "ephemeral-storage": "98831908Ki", "memory": "32863532Ki", "pods": "110"},
            "conditions": [
                {"lastHeartbeatTime": TIME, "lastTransitionTime": TIME, "message": "kubelet has sufficient memory available", "reason": "KubeletHasSufficientMemory", "status": "False", "type": "MemoryPressure"},
                {"lastHeartbeatTime": TIME, "lastTransitionTime": TIME, "message": "kubelet has no disk pressure", "reason": "KubeletHasNoDiskPressure", "status": "False", "type": "DiskPressure"},
                {"lastHeartbeatTime": TIME, "lastTransitionTime": TIME, "message": "kubelet has sufficient PID available", "reason": "KubeletHasSufficientPID", "status": "False", "type": "PIDPressure"},
                {"lastHeartbeatTime": TIME, "lastTransitionTime": TIME, "message": "kubelet is posting ready status", "reason": "KubeletReady", "status": "True", "type": "Ready"}
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": uid(2, u64::from(n)),
                "containerRuntimeVersion": "containerd://1.7.22",
                "kernelVersion": "6.1.100+",
                "kubeProxyVersion": "v1.31.1",
                "kubeletVersion": "v1.31.1",
                "machineID": format!("{:032x}", u64::from(n) * 7919),
                "operatingSystem": "linux",
                "osImage": "Container-Optimized OS from Google",
                "systemUUID": uid(3, u64::from(n))
            }
        }
    })
}

fn pod(plan: &Plan, p: PodAt) -> Value {
    let o = plan.options();
    let global = u64::from(p.node) * u64::from(o.pods_per_node) + u64::from(p.index);
    let app = plan.service_name(plan.service_of(p));
    let name = plan.pod_name(p);
    let hash = format!("{:010x}", (global * 2_654_435_761) & 0xff_ffff_ffff);
    let node_ip = plan.node_ip(p.node).to_string();
    let ip = plan.pod_ip(p).to_string();
    let container_id = format!("containerd://{:064x}", u128::from(global) * 0x1234_5678_9abc_def1);
    let image = format!("registry.example.com/{app}:1.27.3");
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "creationTimestamp": TIME,
            "generateName": format!("{app}-{hash}-"),
            "labels": {
                "app": app,
                "pod-template-hash": hash
            },
            "managedFields": managed_fields("kube-controller-manager", json!({
                "f:metadata": {"f:generateName": {}, "f:labels": {}, "f:ownerReferences": {}},
                "f:spec": {"f:containers": {}}
            })),
            "name": name,
            "namespace": "default",
            "ownerReferences": [{
                "apiVersion": "apps/v1",
                "blockOwnerDeletion": true,
                "controller": true,
                "kind": "ReplicaSet",
                "name": format!("{app}-{hash}"),
                "uid": uid(4, global)
            }],
            "resourceVersion": (2_000_000 + global).to_string(),
            "uid": uid(5, global)
        },
        "spec": {
            "containers": [{
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "name": "server",
                "ports": [{"containerPort": CONTAINER_PORT, "name": "http", "protocol": "TCP"}],
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "volumeMounts": [{"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": "kube-api-access-7xq2c", "readOnly": true}]
            }],
            "dnsPolicy": "ClusterFirst",
            "enableServiceLinks": true,
            "nodeName": plan.node_name(p.node),
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30,
            "volumes": [{
                "name": "kube-api-access-7xq2c",
                "projected": {
                    "defaultMode": 420,
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
                    ]
                }
            }]
        },
        "status": {
            "conditions": [
                {"lastProbeTime": null, "lastTransitionTime": TIME, "status": "True", "type": "Initialized"},
                {"lastProbeTime": null, "lastTransitionTime": TIME, "status": "True", "type": "Ready"},
                {"lastProbeTime": null, "lastTransitionTime": TIME, "status": "True", "type": "ContainersReady"},
                {"lastProbeTime": null, "lastTransitionTime": TIME, "status": "True", "type": "PodScheduled"}
            ],
            "containerStatuses": [{
                "containerID": container_id,
                "image": image,
                "imageID": format!("registry.example.com/{app}@sha256:{:064x}", global),
                "lastState": {},
                "name": "server",
                "ready": true,
                "restartCount": 0,
                "started": true,
                "state": {"running": {"startedAt": TIME}}
            }],
            "hostIP": node_ip,
            "hostIPs": [{"ip": node_ip}],
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "qosClass": "Burstable",
            "startTime": TIME
        }
    })
}

fn service(plan: &Plan, s: u32) -> Value {
    let o = plan.options();
    let name = plan.service_name(s);
    let kind = plan.service_type(s);
    let ip = plan.cluster_ip(s).to_string();
    let mut port = json!({"name": "http", "port": SERVICE_PORT, "protocol": "TCP", "targetPort": CONTAINER_PORT});
    if let Some(np) = plan.node_port(s) {
        port["nodePort"] = json!(np);
    }
    let mut spec = json!({
        "clusterIP": ip,
        "clusterIPs": [ip],
        "internalTrafficPolicy": o.internal_traffic_policy.to_string(),
        "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack",
        "ports": [port],
        "selector": {"app": name},
        "sessionAffinity": if o.client_ip_affinity { "ClientIP" } else { "None" },
        "type": kind
    });
    if o.client_ip_affinity {
        spec["sessionAffinityConfig"] = json!({"clientIP": {"timeoutSeconds": 10800}});
    }
    if kind != "ClusterIP" {
        spec["externalTrafficPolicy"] = json!(o.external_traffic_policy.to_string());
    }
    let status = match plan.load_balancer_ip(s) {
        Some(lb) => json!({"loadBalancer": {"ingress": [{"ip": lb.to_string(), "ipMode": "VIP"}]}}),
        None => json!({"loadBalancer": {}}),
    };
    let applied = format!(
        "{{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{{\"annotations\":{{}},\"name\":\"{name}\",\"namespace\":\"default\"}},\"spec\":{{\"ports\":[{{\"name\":\"http\",\"port\":{SERVICE_PORT},\"targetPort\":{CONTAINER_PORT}}}],\"selector\":{{\"app\":\"{name}\"}}}}}}\n"
    );
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": applied},
            "creationTimestamp": TIME,
            "labels": {"app": name},
            "managedFields": managed_fields("kubectl-client-side-apply", json!({"f:metadata": {"f:annotations": {}, "f:labels": {}}, "f:spec": {"f:ports": {}, "f:selector": {}, "f:sessionAffinity": {}, "f:type": {}}})),
            "name": name,
            "namespace": "default",
            "resourceVersion": (3_000_000 + s).to_string(),
            "uid": uid(6, u64::from(s))
        },
        "spec": spec,
        "status": status
    })
}

fn slice(plan: &Plan, s: u32) -> Value {
    let name = plan.service_name(s);
    let endpoints: Vec<Value> = plan
        .endpoints(s)
        .map(|p| {
            json!({
                "addresses": [plan.pod_ip(p).to_string()],
                "conditions": {"ready": true, "serving": true, "terminating": false},
                "nodeName": plan.node_name(p.node),
                "targetRef": {"kind": "Pod", "name": plan.pod_name(p), "namespace": "default", "uid": uid(5, u64::from(p.node) * u64::from(plan.options().pods_per_node) + u64::from(p.index))},
                "zone": "europe-west1-b"
            })
        })
        .collect();
    json!({
        "addressType": "IPv4",
        "apiVersion": "discovery.k8s.io/v1",
        "endpoints": endpoints,
        "kind": "EndpointSlice",
        "metadata": {
            "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": TIME},
            "creationTimestamp": TIME,
            "generateName": format!("{name}-"),
            "generation": 1,
            "labels": {
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                "kubernetes.io/service-name": name
            },
            "managedFields": managed_fields("kube-controller-manager", json!({"f:addressType": {}, "f:endpoints": {}, "f:metadata": {"f:annotations": {}, "f:generateName": {}, "f:labels": {}, "f:ownerReferences": {}}, "f:ports": {}})),
            "name": format!("{name}-{:05x}", s),
            "namespace": "default",
            "ownerReferences": [{"apiVersion": "v1", "blockOwnerDeletion": true, "controller": true, "kind": "Service", "name": name, "uid": uid(6, u64::from(s))}],
            "resourceVersion": (4_000_000 + s).to_string(),
            "uid": uid(7, u64::from(s))
        },
        "ports": [{"name": "http", "port": CONTAINER_PORT, "protocol": "TCP"}]
    })
}
