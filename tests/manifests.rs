//! Kubernetes manifests read as they are: the same cluster as a `kubectl get -o yaml` List, as
//! `-o json`, as a directory of files, as several -f and on stdin gives the same traces; and a
//! scenario made by `k8snet import` traces as the manifests do.

use std::io::Write;
use std::process::{Command, Stdio};

const YAML: &str = "tests/manifests/cluster.yaml";
const JSON: &str = "tests/manifests/cluster.json";
const DIR: &str = "tests/manifests/dir";
/// The JSON dump as two `kubectl` runs into one file, the second written by `jq -c`.
const SEVERAL_JSON: &str = "tests/manifests/several.json";

/// Every kind of destination the fixture has: Services with and without selectors, not-ready
/// and terminating endpoints, DNS, a NodePort, a load balancer and an Ingress.
const QUERIES: &str = "\
toolbox shop/svc/web --all-endpoints
toolbox shop/svc/db
toolbox db.shop --port 5432
toolbox kubernetes.default --port 443
toolbox kube-dns.kube-system --port 53 --protocol udp
toolbox pod/shop/web-7c9f8d6b5-hq7vn --port 8080
internet http://shop.example.com/
internet http://shop.example.com/static/app.js
internet shop/lb/front
internet node/node-1:30080
internet node/node-1:31080
shop/web-7c9f8d6b5-4xkzj svc/web
";

fn k8snet(args: &[&str], stdin: Option<&[u8]>) -> (String, String, i32) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_k8snet"))
        .args(args)
        .env_remove("K8SNET_SCENARIO")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

/// The traces of every query, as JSON with the input's name and digest left out (they differ
/// between the forms of one cluster by design).
fn traces(inputs: &[&str], stdin: Option<&[u8]>) -> Vec<serde_json::Value> {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let batch = std::env::temp_dir().join(format!("k8snet-manifest-queries-{}-{n}", std::process::id()));
    std::fs::write(&batch, QUERIES).unwrap();
    let batch = batch.to_str().unwrap().to_owned();
    let mut args = vec!["trace"];
    for i in inputs {
        args.extend(["-f", i]);
    }
    args.extend(["--batch", &batch, "-o", "json"]);
    let (stdout, stderr, code) = k8snet(&args, stdin);
    assert!(code == 0 || code == 1, "{inputs:?}: exit {code}: {stderr}");
    std::fs::remove_file(&batch).unwrap();
    stdout
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("scenario");
            v
        })
        .collect()
}

#[test]
fn every_form_of_the_dump_traces_alike() {
    let yaml = traces(&[YAML], None);
    assert_eq!(yaml.len(), QUERIES.lines().count());
    assert_eq!(traces(&[JSON], None), yaml, "JSON");
    assert_eq!(traces(&[DIR], None), yaml, "directory");
    assert_eq!(
        traces(&[SEVERAL_JSON], None),
        yaml,
        "several JSON documents in one file"
    );
    let dirs: Vec<String> = std::fs::read_dir(DIR)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    let dirs: Vec<&str> = dirs.iter().map(String::as_str).collect();
    assert_eq!(traces(&dirs, None), yaml, "several -f");
    let text = std::fs::read(YAML).unwrap();
    assert_eq!(traces(&["-"], Some(&text)), yaml, "stdin");
}

#[test]
fn the_dump_traces_what_its_endpoint_slices_say() {
    let all = traces(&[YAML], None);
    let verdict = |i: usize, branch: usize| all[i]["traces"][branch]["verdict"].as_str().unwrap().to_owned();
    let text = |i: usize| all[i].to_string();
    // Two ready endpoints of four: the not-ready and the terminating one are named as skipped.
    assert_eq!(all[0]["traces"].as_array().unwrap().len(), 2);
    assert!(text(0).contains("web-7c9f8d6b5-hq7vn (10.244.2.9:8080) of svc/web is skipped: not ready"));
    assert!(text(0).contains("web-6f7d5c4b8-zz4rt (10.244.2.4:8080) of svc/web is skipped: terminating"));
    // A Service without a selector reaches the pod its EndpointSlice names.
    assert_eq!(verdict(1, 0), "delivered");
    assert!(text(1).contains("shop/db-0"), "{}", text(1));
    assert_eq!(verdict(2, 0), "delivered");
    // `kubernetes` reaches the API server's hostNetwork pod through its slice.
    assert_eq!(verdict(3, 0), "delivered");
    assert!(text(3).contains("kube-apiserver-node-1"), "{}", text(3));
    // A pod that is not ready still answers when dialled directly: readiness is kube-proxy's.
    assert_eq!(verdict(5, 0), "delivered");
    // Local policy: node-1 holds no endpoint of `front`, so its NodePort drops.
    assert_eq!(verdict(10, 0), "no_local_endpoints");
}

#[test]
fn an_imported_scenario_traces_as_the_manifests_do() {
    let (scenario, stderr, code) = k8snet(&["import", YAML], None);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        scenario.contains("# tests/manifests/cluster.yaml:"),
        "comments name the place"
    );
    assert!(scenario.contains("# assumption: cluster.serviceNetwork: 10.96.0.0/16"));
    let file = std::env::temp_dir().join(format!("k8snet-imported-{}.yaml", std::process::id()));
    std::fs::write(&file, &scenario).unwrap();
    let imported = traces(&[file.to_str().unwrap()], None);
    assert_eq!(imported, traces(&[YAML], None));
    // The same bytes on every run, from every form of the dump but for the names in comments.
    let (again, _, _) = k8snet(&["import", YAML], None);
    assert_eq!(again, scenario);
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn skipped_objects_are_counted_by_kind_and_assumptions_come_first() {
    let (stdout, _, code) = k8snet(&["trace", "-f", YAML, "--from", "toolbox", "--to", "shop/svc/db"], None);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("assumption: cluster.serviceNetwork"), "{stdout}");
    let last = stdout.lines().last().unwrap();
    assert!(last.starts_with("skipped: "), "{last}");
    assert!(last.contains("3 Deployment"), "{last}");
    assert!(last.contains("1 Pod (finished)"), "{last}");
    let (json, _, _) = k8snet(
        &[
            "trace",
            "-f",
            JSON,
            "--from",
            "toolbox",
            "--to",
            "shop/svc/db",
            "-o",
            "json",
        ],
        None,
    );
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["scenario"]["manifests"]["skipped"]["Deployment"], 3);
    assert!(
        doc["scenario"]["manifests"]["assumptions"][0]
            .as_str()
            .unwrap()
            .starts_with("cluster.serviceNetwork")
    );
}

#[test]
fn a_generated_kubectl_dump_loads_and_traces_as_its_scenario() {
    let dir = std::env::temp_dir().join(format!("k8snet-generated-dump-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (dump, _, code) = k8snet(&["generate", "--nodes", "4", "--format", "kubectl-json"], None);
    assert_eq!(code, 0);
    assert!(dump.contains("\"managedFields\""), "the dump looks like kubectl's");
    let (scenario, _, _) = k8snet(&["generate", "--nodes", "4"], None);
    let (queries, _, _) = k8snet(&["generate", "--nodes", "4", "--queries", "20"], None);
    let paths = [
        dir.join("dump.json"),
        dir.join("scenario.yaml"),
        dir.join("queries.txt"),
    ];
    for (path, text) in paths.iter().zip([&dump, &scenario, &queries]) {
        std::fs::write(path, text).unwrap();
    }
    let verdicts = |input: &std::path::Path| -> Vec<String> {
        let (out, err, code) = k8snet(
            &[
                "trace",
                "-f",
                input.to_str().unwrap(),
                "--batch",
                paths[2].to_str().unwrap(),
            ],
            None,
        );
        assert_eq!(code, 0, "{err}");
        out.lines()
            .filter(|l| !l.is_empty() && !l.starts_with("assumption:") && !l.starts_with("skipped:"))
            .map(str::to_owned)
            .collect()
    };
    let from_dump = verdicts(&paths[0]);
    assert!(
        from_dump.iter().filter(|l| l.contains("delivered")).count() >= 20,
        "{from_dump:?}"
    );
    assert_eq!(from_dump, verdicts(&paths[1]));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// spec.externalIPs are read (an IPv6 one left out with a warning), and survive `import`: the
/// imported scenario traces both ways in as the manifests do.
#[test]
fn external_ips_are_read_and_imported() {
    const EXTERNAL: &str = "tests/manifests/external-ips.yaml";
    let trace = |input: &str, from: &str| {
        let (stdout, stderr, code) = k8snet(
            &[
                "trace",
                "-f",
                input,
                "--from",
                from,
                "--to",
                "198.51.100.20:80",
                "-o",
                "json",
            ],
            None,
        );
        assert!(code == 0 || code == 1, "{input}: exit {code}: {stderr}");
        let mut v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        v.as_object_mut().unwrap().remove("scenario");
        (v, stderr)
    };
    let (outside, stderr) = trace(EXTERNAL, "internet");
    assert!(stderr.contains("an IPv6 externalIP is left out"), "{stderr}");
    assert_eq!(outside["traces"][0]["verdict"], "no_local_endpoints", "{outside:#}");
    let (inside, _) = trace(EXTERNAL, "client");
    assert_eq!(inside["traces"][0]["verdict"], "delivered", "{inside:#}");
    let (scenario, stderr, code) = k8snet(&["import", EXTERNAL], None);
    assert_eq!(code, 0, "{stderr}");
    assert!(scenario.contains("externalIPs: [198.51.100.20]"), "{scenario}");
    let file = std::env::temp_dir().join(format!("k8snet-imported-extip-{}.yaml", std::process::id()));
    std::fs::write(&file, &scenario).unwrap();
    let path = file.to_str().unwrap();
    assert_eq!(trace(path, "internet").0, outside);
    assert_eq!(trace(path, "client").0, inside);
    std::fs::remove_file(&file).unwrap();
}
