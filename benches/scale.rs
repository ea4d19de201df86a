//! How k8snet's cost grows with the cluster, at 1 %, 10 % and 100 % of Kubernetes' limits
//! (50, 500 and 5,000 nodes; 30 pods and 2 Services a node), side by side with the floor: the
//! same file parsed into plain serde structs (`floor/mirror.rs`), by serde-saphyr (YAML) and
//! serde_json (JSON).
//!
//! cargo bench --bench scale                                  # 50 nodes
//! K8SNET_BENCH_SIZES=50,500 cargo bench --bench scale        # more sizes
//!
//! Only 50 nodes runs by default, so a plain `cargo bench` takes a minute; 500 and 5,000 nodes
//! take a few minutes more.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};

use k8snet::generate::{self, Format, Options, Plan};
use k8snet::input::{self, Source};
use k8snet::model::Cluster;
use k8snet::resolve::Query;
use k8snet::sim::netfilter::BranchChoice;

#[path = "floor/mirror.rs"]
mod mirror;

// k8snet's own allocator, for the floor and for k8snet alike.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Trace cases in each generated file, for `check`.
const CHECK_TRACES: u32 = 1_000;

fn sizes() -> Vec<u32> {
    let text = std::env::var("K8SNET_BENCH_SIZES").unwrap_or_else(|_| "50".into());
    text.split(',')
        .map(|n| {
            n.trim()
                .parse()
                .unwrap_or_else(|_| panic!("K8SNET_BENCH_SIZES: `{n}` is not a node count"))
        })
        .collect()
}

/// What `k8snet` does before it can answer: parse, decode, validate.
fn load(name: &str, text: &str) -> Cluster {
    let source = Source {
        name: name.into(),
        text: text.into(),
    };
    let (spec, problems) = input::parse(&source).unwrap_or_else(|_| panic!("{name} parses"));
    assert!(problems.is_empty(), "{name} decodes");
    k8snet::model::build(&spec)
        .unwrap_or_else(|_| panic!("{name} validates"))
        .cluster
}

/// A whole command as the binary runs it, from reading the file to the output in memory.
fn run(args: &[&str]) -> k8snet::app::Outcome {
    let cli = k8snet::cli::Cli::try_parse_from(std::iter::once("k8snet").chain(args.iter().copied()))
        .expect("valid arguments");
    let outcome = k8snet::app::run(&cli, false, false);
    assert!(outcome.code < 2, "{args:?}: {}", outcome.stderr);
    outcome
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("the bench directory is writable");
    path
}

fn bench(c: &mut Criterion) {
    k8snet::memory::return_freed_memory_at_once();
    let dir = std::env::temp_dir().join(format!("k8snet-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a bench directory");
    for nodes in sizes() {
        let plan = Plan::new(Options {
            nodes,
            traces: CHECK_TRACES,
            ..Options::default()
        })
        .expect("a valid plan");
        let yaml = generate::scenario(&plan, Format::Yaml);
        let json = generate::scenario(&plan, Format::Json);
        let yaml_path = write(&dir, &format!("{nodes}.yaml"), &yaml);
        let yaml_file = yaml_path.to_str().expect("a UTF-8 path");
        let (from, to) = match plan.cases(1)[..] {
            [generate::Case::ToService { from, service }] => {
                (plan.pod_name(from), format!("svc/{}", plan.service_name(service)))
            }
            _ => unreachable!("the first case of seed 1 is pod to Service"),
        };

        let mut g = c.benchmark_group(format!(
            "{nodes} nodes, {} pods, {} Services",
            nodes * plan.options().pods_per_node,
            plan.services()
        ));
        g.sample_size(10).warm_up_time(Duration::from_secs(1));
        if nodes >= 500 {
            // One iteration a sample: criterion's default (1, 2, ... 10 iterations) would run the
            // seconds-long commands 55 times each.
            g.sampling_mode(SamplingMode::Flat);
        }

        g.bench_function("floor: serde-saphyr into plain structs (YAML)", |b| {
            b.iter(|| mirror::from_yaml(black_box(&yaml)).expect("parses"))
        });
        g.bench_function("floor: serde_json into plain structs (JSON)", |b| {
            b.iter(|| mirror::from_json(black_box(&json)).expect("parses"))
        });
        g.bench_function("load and validate (YAML)", |b| {
            b.iter(|| load("generated.yaml", black_box(&yaml)))
        });
        g.bench_function("load and validate (JSON)", |b| {
            b.iter(|| load("generated.json", black_box(&json)))
        });

        let cluster = load("generated.yaml", &yaml);
        g.bench_function("compile", |b| b.iter(|| k8snet::compile::compile(black_box(&cluster))));

        let state = k8snet::compile::compile(&cluster);
        let query = Query::new(&from, &to);
        g.bench_function("one trace, pod to Service across nodes, on the loaded cluster", |b| {
            b.iter(|| {
                k8snet::tracer::trace(&cluster, &state, black_box(&query), BranchChoice::default()).expect("traces")
            })
        });
        g.bench_function("command: trace (load, compile, one trace)", |b| {
            b.iter(|| run(&["trace", "-f", yaml_file, "--from", &from, "--to", &to]))
        });
        g.bench_function("command: explain --node node-1", |b| {
            b.iter(|| run(&["explain", yaml_file, "--node", "node-1"]))
        });
        let service = to.trim_start_matches("svc/");
        g.bench_function("command: explain --service", |b| {
            b.iter(|| run(&["explain", yaml_file, "--service", service]))
        });
        g.bench_function("command: check (1,000 traces)", |b| {
            b.iter(|| run(&["check", yaml_file]))
        });

        // The same cluster with kube-proxy in nftables mode.
        let nft_plan = Plan::new(Options {
            nodes,
            traces: CHECK_TRACES,
            kube_proxy: k8snet::model::KubeProxyMode::Nftables,
            ..Options::default()
        })
        .expect("a valid plan");
        let nft_yaml = generate::scenario(&nft_plan, Format::Yaml);
        let nft_path = write(&dir, &format!("{nodes}-nftables.yaml"), &nft_yaml);
        let nft_file = nft_path.to_str().expect("a UTF-8 path");
        let nft_cluster = load("generated.yaml", &nft_yaml);
        g.bench_function("nftables: compile", |b| {
            b.iter(|| k8snet::compile::compile(black_box(&nft_cluster)))
        });
        let nft_state = k8snet::compile::compile(&nft_cluster);
        g.bench_function(
            "nftables: one trace, pod to Service across nodes, on the loaded cluster",
            |b| {
                b.iter(|| {
                    k8snet::tracer::trace(&nft_cluster, &nft_state, black_box(&query), BranchChoice::default())
                        .expect("traces")
                })
            },
        );
        g.bench_function("nftables: command: trace (load, compile, one trace)", |b| {
            b.iter(|| run(&["trace", "-f", nft_file, "--from", &from, "--to", &to]))
        });
        g.bench_function("nftables: command: explain --node node-1", |b| {
            b.iter(|| run(&["explain", nft_file, "--node", "node-1"]))
        });
        g.bench_function("nftables: command: check (1,000 traces)", |b| {
            b.iter(|| run(&["check", nft_file]))
        });
        g.finish();
        cni_models(c, &dir, nodes);
        ipvs_mode(c, &dir, nodes);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same cluster under each other CNI model (the group above is the bridge's): what the
/// model costs to compile, and a pod-to-Service trace across nodes.
fn cni_models(c: &mut Criterion, dir: &Path, nodes: u32) {
    use k8snet::model::Cni;
    for cni in [Cni::FlannelHostGw, Cni::FlannelVxlan, Cni::Calico, Cni::Cilium] {
        let plan = Plan::new(Options {
            nodes,
            cni,
            ..Options::default()
        })
        .expect("a valid plan");
        let yaml = generate::scenario(&plan, Format::Yaml);
        let path = write(dir, &format!("{nodes}-{}.yaml", cni.word()), &yaml);
        let file = path.to_str().expect("a UTF-8 path");
        let (from, to) = match plan.cases(1)[..] {
            [generate::Case::ToService { from, service }] => {
                (plan.pod_name(from), format!("svc/{}", plan.service_name(service)))
            }
            _ => unreachable!("the first case of seed 1 is pod to Service"),
        };
        let mut g = c.benchmark_group(format!("{nodes} nodes, cni {}", cni.word()));
        g.sample_size(10).warm_up_time(Duration::from_secs(1));
        if nodes >= 500 {
            g.sampling_mode(SamplingMode::Flat);
        }
        let cluster = load("generated.yaml", &yaml);
        g.bench_function("compile", |b| b.iter(|| k8snet::compile::compile(black_box(&cluster))));
        let state = k8snet::compile::compile(&cluster);
        let query = Query::new(&from, &to);
        g.bench_function("one trace, pod to Service across nodes, on the loaded cluster", |b| {
            b.iter(|| {
                k8snet::tracer::trace(&cluster, &state, black_box(&query), BranchChoice::default()).expect("traces")
            })
        });
        g.bench_function("command: trace (load, compile, one trace)", |b| {
            b.iter(|| run(&["trace", "-f", file, "--from", &from, "--to", &to]))
        });
        g.finish();
    }
}

/// The same cluster with kube-proxy in IPVS mode, whose virtual servers, `kube-ipvs0` addresses
/// and nat rules every node shares.
fn ipvs_mode(c: &mut Criterion, dir: &Path, nodes: u32) {
    let plan = Plan::new(Options {
        nodes,
        kube_proxy: k8snet::model::KubeProxyMode::Ipvs,
        ..Options::default()
    })
    .expect("a valid plan");
    let yaml = generate::scenario(&plan, Format::Yaml);
    let path = write(dir, &format!("{nodes}-ipvs.yaml"), &yaml);
    let file = path.to_str().expect("a UTF-8 path");
    let (from, to) = match plan.cases(1)[..] {
        [generate::Case::ToService { from, service }] => {
            (plan.pod_name(from), format!("svc/{}", plan.service_name(service)))
        }
        _ => unreachable!("the first case of seed 1 is pod to Service"),
    };
    let mut g = c.benchmark_group(format!("{nodes} nodes, kube-proxy ipvs"));
    g.sample_size(10).warm_up_time(Duration::from_secs(1));
    if nodes >= 500 {
        g.sampling_mode(SamplingMode::Flat);
    }
    let cluster = load("generated.yaml", &yaml);
    g.bench_function("compile", |b| b.iter(|| k8snet::compile::compile(black_box(&cluster))));
    let state = k8snet::compile::compile(&cluster);
    let query = Query::new(&from, &to);
    g.bench_function("one trace, pod to Service across nodes, on the loaded cluster", |b| {
        b.iter(|| k8snet::tracer::trace(&cluster, &state, black_box(&query), BranchChoice::default()).expect("traces"))
    });
    g.bench_function("command: trace (load, compile, one trace)", |b| {
        b.iter(|| run(&["trace", "-f", file, "--from", &from, "--to", &to]))
    });
    g.bench_function("command: explain --node node-1", |b| {
        b.iter(|| run(&["explain", file, "--node", "node-1"]))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
