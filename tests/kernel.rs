//! The kernel as referee. Every scenario in `scenarios/` and a set of generated clusters are
//! built for real in network namespaces with the script `k8snet materialize` writes; then every
//! claim a trace makes is put to the kernel: each route lookup (`ip route get`), the routing
//! tables and rules as loaded, who answers a real connection (socat) or ping, and conntrack's
//! NAT.
//!
//! Needs root and iproute2, iptables, conntrack, socat and ping. Without root these tests skip with a
//! message; with `K8SNET_KERNEL_TESTS=1` a missing prerequisite fails them instead.

#[path = "kernel/compare.rs"]
mod compare;
#[path = "kernel/generate.rs"]
mod generate;
#[path = "kernel/lab.rs"]
mod lab;
#[path = "kernel/localnet.rs"]
mod localnet;
#[path = "kernel/nftrace.rs"]
mod nftrace;
#[path = "kernel/run.rs"]
mod run;

use std::io::Write as _;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use k8snet::input::{self, Source};
use k8snet::model::Cluster;
use k8snet::net::{NetState, Protocol};
use k8snet::sim::netfilter::BranchChoice;
use k8snet::trace::Step;

use compare::Tally;
use run::FlowSpec;

/// Generated clusters, and flows tried in each: together at least the 200 generated flows
/// the suite promises.
const GENERATED: usize = 20;
const FLOWS_EACH: usize = 12;
/// Generated clusters under NetworkPolicy, and flows tried in each: together at least the 300
/// policy flows the suite promises.
const POLICY_LABS: usize = 12;
const POLICY_FLOWS_EACH: usize = 26;
const SEED: u64 = 0x6b38_736e_6574;
/// Labs built at once; CI machines have two cores.
const WORKERS: usize = 2;

/// Written past the test harness's capture, so the line shows in every run's output.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn cluster_of(source: &Source) -> Cluster {
    let (spec, diags) = input::parse(source).unwrap_or_else(|d| panic!("{}: {d:?}", source.name));
    assert!(diags.is_empty(), "{}: {diags:?}", source.name);
    k8snet::model::build(&spec)
        .unwrap_or_else(|d| panic!("{}: {d:?}", source.name))
        .cluster
}

/// The decision that picks a flow's endpoint (its index among the journey's decisions) and how
/// many branches it has.
fn endpoint_decision(c: &Cluster, state: &NetState, f: &FlowSpec) -> Option<(usize, usize)> {
    k8snet::tracer::trace(c, state, &f.query(), BranchChoice::default())
        .ok()
        .and_then(|t| k8snet::tracer::endpoint_decision(&t))
}

/// A scenario's own `traces:`, then more: every Service port from a pod and from a node,
/// every listening port from another pod, a port nobody listens on, and an address outside.
/// Each flow through a Service is tried once per endpoint branch.
fn scenario_flows(c: &Cluster, state: &NetState) -> Vec<FlowSpec> {
    let mut specs: Vec<FlowSpec> = c
        .traces
        .iter()
        // A case that pins a namespace, container, branch or node asks more than a flow says.
        .filter(|t| t.namespace.is_none() && t.container.is_none() && t.endpoint.is_none() && t.via_node.is_none())
        .map(|t| FlowSpec {
            port: t.port,
            protocol: t.protocol,
            ..FlowSpec::new(&t.from.value, &t.to.value)
        })
        .collect();
    let clients: Vec<String> = c
        .pods
        .iter()
        .filter(|p| !p.host_network)
        .map(|p| format!("{}/{}", p.namespace, p.name))
        .collect();
    for (i, s) in c.services.iter().enumerate() {
        if s.cluster_ip.is_none() {
            continue;
        }
        for p in &s.ports {
            let from = [
                clients[i % clients.len()].clone(),
                format!("node/{}", c.nodes[i % c.nodes.len()].name),
            ];
            for from in from {
                specs.push(FlowSpec {
                    port: Some(p.port),
                    protocol: Some(p.protocol),
                    ..FlowSpec::new(&from, &format!("{}/svc/{}", s.namespace, s.name))
                });
            }
        }
    }
    // Each externalIP of a Service port, from a pod and from a node: kube-proxy answers it on
    // the sender's own node.
    for (i, s) in c.services.iter().enumerate().filter(|(_, s)| s.cluster_ip.is_some()) {
        for ip in &s.external_ips {
            for p in &s.ports {
                for from in [
                    clients[i % clients.len()].clone(),
                    format!("node/{}", c.nodes[(i + 1) % c.nodes.len()].name),
                ] {
                    specs.push(FlowSpec {
                        protocol: Some(p.protocol),
                        ..FlowSpec::new(&from, &format!("{ip}:{}", p.port))
                    });
                }
            }
        }
    }
    for (i, p) in c.pods.iter().enumerate().filter(|(_, p)| !p.host_network) {
        let from = &clients[(i + 1) % clients.len()];
        for (_, port) in p.listeners() {
            specs.push(FlowSpec {
                port: Some(port.port),
                protocol: Some(port.protocol),
                ..FlowSpec::new(from, &format!("pod/{}/{}", p.namespace, p.name))
            });
        }
        specs.push(FlowSpec {
            port: Some(7777),
            ..FlowSpec::new(from, &format!("pod/{}/{}", p.namespace, p.name))
        });
    }
    specs.push(FlowSpec::new(&clients[0], "203.0.113.7:80"));
    // Pings: to every pod and ClusterIP from one client each, and to a node, as `ping` sends
    // them. kube-proxy translates none of them.
    let ping = |from: &str, to: String| FlowSpec {
        protocol: Some(Protocol::Icmp),
        ..FlowSpec::new(from, &to)
    };
    for (i, p) in c.pods.iter().enumerate().filter(|(_, p)| !p.host_network) {
        specs.push(ping(
            &clients[(i + 1) % clients.len()],
            format!("pod/{}/{}", p.namespace, p.name),
        ));
    }
    for (i, s) in c.services.iter().enumerate().filter(|(_, s)| s.cluster_ip.is_some()) {
        specs.push(ping(
            &clients[i % clients.len()],
            format!("{}/svc/{}", s.namespace, s.name),
        ));
    }
    specs.push(ping(&clients[0], format!("node/{}", c.nodes[c.nodes.len() - 1].name)));
    specs
        .into_iter()
        .flat_map(|f| {
            let decision = endpoint_decision(c, state, &f);
            let n = decision.map_or(1, |(_, n)| n);
            (0..n).map(move |b| FlowSpec {
                choice: match decision {
                    Some((k, n)) if n > 1 => BranchChoice {
                        nth: Some((k, b)),
                        ..f.choice.clone()
                    },
                    _ => f.choice.clone(),
                },
                ..f.clone()
            })
        })
        .collect()
}

struct Job {
    name: String,
    source: Source,
    /// The generator's flows; a scenario's are derived from it when its lab runs.
    generated: Option<Vec<FlowSpec>>,
    /// Made by the NetworkPolicy generator.
    policies: bool,
}

struct Totals {
    tally: Tally,
    /// Labs the kernel cannot build here, by name.
    not_checked: Vec<(String, &'static str)>,
    scenario_flows: usize,
    generated_flows: usize,
    policy_flows: usize,
    pings: usize,
    labs: usize,
}

/// What in `state` the kernel cannot build here, if anything: Calico's IP-in-IP (this kernel
/// has no ipip module), Cilium's kube-proxy replacement (eBPF programs, modelled by their
/// effect, which plain routes and rules cannot stand in for), kube-proxy's IPVS mode (no
/// ip_vs module and no dummy device here; `materialize` refuses it).
fn unbuildable(state: &NetState) -> Option<&'static str> {
    let hosts = || state.hosts.iter();
    if hosts()
        .flat_map(|h| &h.interfaces)
        .any(|i| matches!(i.link, k8snet::net::Link::Ipip { .. }))
    {
        return Some("IP-in-IP (no ipip module in this kernel)");
    }
    if hosts().any(|h| h.ipvs.is_some()) {
        return Some("kube-proxy IPVS mode (no ip_vs module and no dummy device in this kernel)");
    }
    hosts()
        .any(|h| h.service_lb.is_some())
        .then_some("Cilium's kube-proxy replacement (eBPF)")
}

/// The lab's tally, how many flows it tried, and how many of them were pings; `None` for a
/// lab this kernel cannot build.
fn run_job(job: &Job) -> Result<(Tally, usize, usize), &'static str> {
    let c = cluster_of(&job.source);
    let state = k8snet::compile::compile(&c);
    if let Some(why) = unbuildable(&state) {
        return Err(why);
    }
    let specs = match &job.generated {
        Some(flows) => flows.clone(),
        None => scenario_flows(&c, &state),
    };
    let flows = run::trace_flows(&job.name, &c, &state, &specs);
    let report = run::run(&job.name, &state, &flows);
    let pings = flows.iter().filter(|f| f.protocol == Protocol::Icmp).count();
    Ok((report.tally, report.flows, pings))
}

#[test]
fn kernel_agrees_with_the_simulator() {
    if let lab::Gate::Skip(why) = lab::gate() {
        say(&why);
        return;
    }
    let started = Instant::now();
    let mut jobs: Vec<Job> = Vec::new();
    // The shipped scenarios, and the upstream NetworkPolicy conformance cases.
    let mut files: Vec<_> = ["scenarios", "tests/netpol-conformance"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{dir}: {e}")))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for path in files {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(&path).expect("the scenario reads");
        jobs.push(Job {
            source: Source {
                name: name.clone(),
                text,
            },
            name,
            generated: None,
            policies: false,
        });
    }
    let dump = std::env::var_os("K8SNET_KERNEL_DUMP");
    for g in generate::scenarios(SEED, GENERATED, FLOWS_EACH) {
        // To replay a disagreement by hand: the generated scenarios as files.
        if let Some(dir) = &dump {
            let file = Path::new(dir).join(format!("{}.yaml", g.name));
            std::fs::write(&file, &g.yaml).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        }
        jobs.push(Job {
            source: Source {
                name: g.name.clone(),
                text: g.yaml,
            },
            name: g.name,
            generated: Some(g.flows),
            policies: false,
        });
    }
    for lab in k8snet::generate::policies::labs(SEED, POLICY_LABS, POLICY_FLOWS_EACH) {
        if let Some(dir) = &dump {
            let file = Path::new(dir).join(format!("{}.yaml", lab.name));
            std::fs::write(&file, &lab.yaml).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        }
        let flows = lab
            .flows
            .iter()
            .map(|f| FlowSpec {
                port: Some(f.port),
                protocol: Some(f.protocol),
                ..FlowSpec::new(&f.from, &f.to)
            })
            .collect();
        jobs.push(Job {
            source: Source {
                name: lab.name.clone(),
                text: lab.yaml,
            },
            name: lab.name,
            generated: Some(flows),
            policies: true,
        });
    }

    // To look at one lab alone: K8SNET_KERNEL_ONLY=gen-12 (or a scenario's path).
    if let Ok(only) = std::env::var("K8SNET_KERNEL_ONLY") {
        jobs.retain(|j| j.name == only);
    }
    let queue = Mutex::new(jobs.iter());
    let totals = Mutex::new(Totals {
        tally: Tally::default(),
        not_checked: Vec::new(),
        scenario_flows: 0,
        generated_flows: 0,
        policy_flows: 0,
        pings: 0,
        labs: 0,
    });
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| {
                loop {
                    let Some(job) = queue.lock().expect("queue").next() else {
                        break;
                    };
                    let result = run_job(job);
                    let mut t = totals.lock().expect("totals");
                    let (tally, flows, pings) = match result {
                        Ok(r) => r,
                        Err(why) => {
                            t.not_checked.push((job.name.clone(), why));
                            continue;
                        }
                    };
                    t.pings += pings;
                    t.tally.absorb(tally);
                    t.labs += 1;
                    if job.policies {
                        t.policy_flows += flows;
                    } else if job.generated.is_some() {
                        t.generated_flows += flows;
                    } else {
                        t.scenario_flows += flows;
                    }
                }
            });
        }
    });
    let t = totals.into_inner().expect("totals");
    let agreed = t.tally.checks - t.tally.failures.len();
    if !nftrace::available() {
        say("rule-by-rule walks not compared: iptables is not the nf_tables backend");
    }
    let mut not_checked = t.not_checked.clone();
    not_checked.sort();
    let not_checked: String = not_checked
        .iter()
        .map(|(name, why)| format!("; not checked: {name}, {why}"))
        .collect();
    say(&format!(
        "kernel agreement: {agreed} of {} checks ({}; {} labs; {} flows from scenarios/, {} generated, {} generated under NetworkPolicy, {} of them pings; {:.1} s{not_checked})",
        t.tally.checks,
        t.tally.breakdown(),
        t.labs,
        t.scenario_flows,
        t.generated_flows,
        t.policy_flows,
        t.pings,
        started.elapsed().as_secs_f64()
    ));
    let left = lab::namespaces_with(&format!("kt{}-", std::process::id()));
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
    assert!(
        t.tally.failures.is_empty(),
        "the kernel disagrees with {} of {} checks:\n{}",
        t.tally.failures.len(),
        t.tally.checks,
        t.tally.failures.join("\n")
    );
    if std::env::var_os("K8SNET_KERNEL_ONLY").is_none() {
        assert!(t.generated_flows >= 200, "only {} generated flows", t.generated_flows);
        assert!(t.policy_flows >= 300, "only {} generated policy flows", t.policy_flows);
    }
}

/// The route a lookup would pick if the simulator chose the shortest prefix instead of the
/// longest: a plausible bug, computed from the same tables.
fn shortest_prefix(
    tables: &[k8snet::net::route::RouteTable],
    dst: std::net::Ipv4Addr,
) -> Option<&k8snet::net::route::Route> {
    tables.iter().find_map(|t| {
        t.all()
            .filter(|r| r.dst.contains(&dst))
            .filter(|r| r.kind != k8snet::net::route::RouteType::Broadcast || r.dst.addr() == dst)
            .min_by_key(|r| r.dst.prefix_len())
    })
}

/// The demo and its pod-a → svc/web flow pinned to web-1: the self-tests' subject.
fn demo_flow() -> (Cluster, NetState, FlowSpec) {
    let source = Source {
        name: "scenarios/demo.yaml".into(),
        text: std::fs::read_to_string(Path::new("scenarios/demo.yaml")).expect("the demo reads"),
    };
    let c = cluster_of(&source);
    let state = k8snet::compile::compile(&c);
    let spec = FlowSpec {
        choice: BranchChoice::pinned(vec!["10.0.2.2".parse().expect("an address")]),
        ..FlowSpec::new("pod-a", "svc/web")
    };
    (c, state, spec)
}

/// A harness that agrees with anything proves nothing: a trace whose route choices are made
/// wrong on purpose (shortest prefix wins) must disagree with the kernel, while the same trace
/// unchanged agrees, in the same lab.
#[test]
fn the_harness_catches_a_simulator_that_picks_the_shortest_prefix() {
    if let lab::Gate::Skip(why) = lab::gate() {
        say(&why);
        return;
    }
    let (c, state, spec) = demo_flow();
    let flows = run::trace_flows("demo", &c, &state, std::slice::from_ref(&spec));

    let mut wrong = flows[0].trace.clone();
    let mut changed = 0;
    for hop in wrong.hops.iter_mut() {
        let host = compare::host_at(&state, &hop.place);
        for step in &mut hop.steps {
            if let Step::Route {
                destination,
                matched,
                route_type,
                via,
                dev,
                ..
            } = step
            {
                let r = shortest_prefix(&state.hosts[host].tables, *destination);
                let new_matched = r.map(|r| r.to_string());
                changed += usize::from(new_matched != *matched);
                *matched = new_matched;
                *route_type = r.map(|r| format!("{:?}", r.kind).to_lowercase());
                *via = r.and_then(|r| r.via);
                *dev = r.and_then(|r| r.dev.clone());
            }
        }
    }
    assert!(
        changed > 0,
        "the demo trace has no lookup where the shortest prefix differs"
    );

    let lab = lab::Lab::build(state.clone());
    let mut right = Tally::default();
    run::check_routes(&lab, &flows, &mut right);
    assert!(right.checks > 0 && right.failures.is_empty(), "{:?}", right.failures);
    let mut caught = Tally::default();
    let wrong_flows = [run::Flow {
        trace: wrong,
        label: "demo with shortest-prefix routing".into(),
        ..flows.into_iter().next().expect("one flow")
    }];
    run::check_routes(&lab, &wrong_flows, &mut caught);
    say(&format!(
        "harness self-test: the correct trace agrees on {} lookups; the wrong one disagrees on {} of {}",
        right.checks,
        caught.failures.len(),
        caught.checks
    ));
    assert!(
        !caught.failures.is_empty(),
        "the harness did not notice {changed} wrong route choices"
    );
}

/// The end-to-end comparisons must be able to fail too: in one lab, next to a correct trace,
/// a copy that claims the connection was refused, one whose DNAT claims another endpoint's
/// address, and one that leaves a rule out of the node's walk. Exactly those claims must
/// disagree.
#[test]
fn the_harness_catches_a_wrong_verdict_a_wrong_dnat_and_a_missing_rule() {
    if let lab::Gate::Skip(why) = lab::gate() {
        say(&why);
        return;
    }
    let (c, state, spec) = demo_flow();
    let mut flows = run::trace_flows("demo", &c, &state, &[spec.clone(), spec.clone(), spec.clone(), spec]);
    assert_eq!(flows[0].trace.verdict, k8snet::trace::Verdict::Delivered);
    flows[1].label = "demo, claimed refused".into();
    flows[1].trace.verdict = k8snet::trace::Verdict::NoListener;
    flows[2].label = "demo, claimed DNAT to web-2".into();
    let other: std::net::Ipv4Addr = "10.0.1.3".parse().expect("an address");
    let mut rewritten = 0;
    for step in flows[2].trace.hops.iter_mut().flat_map(|h| h.steps.iter_mut()) {
        if let Step::Nat { nat, after, .. } = step
            && nat == "DNAT"
        {
            after.dst.set_ip(other);
            rewritten += 1;
        }
    }
    assert_eq!(rewritten, 1, "the demo trace has one DNAT");
    flows[3].label = "demo, a rule left out".into();
    let node = &mut flows[3].trace.hops[1];
    let first_rule = node.steps.iter().position(|s| matches!(s, Step::Netfilter { .. }));
    node.steps.remove(first_rule.expect("the node walks rules"));

    let report = run::run("demo", &state, &flows);
    let failures = &report.tally.failures;
    say(&format!(
        "harness self-test: {} of {} end-to-end checks disagree with the wrong claims",
        failures.len(),
        report.tally.checks
    ));
    let wrong = |label: &str, kind: &str| {
        failures
            .iter()
            .filter(|f| f.starts_with(label) && f.contains(kind))
            .count()
    };
    assert_eq!(wrong("demo, claimed refused", "who answered"), 1, "{failures:#?}");
    assert_eq!(wrong("demo, claimed DNAT to web-2", "conntrack"), 1, "{failures:#?}");
    // Where the kernel can show its rule-by-rule walk (the nf_tables backend), a rule left out
    // is caught; elsewhere nothing compares walks.
    let walks = usize::from(report.tally.by_kind.contains_key("netfilter walks"));
    assert_eq!(wrong("demo, a rule left out", "rules walked"), walks, "{failures:#?}");
    assert_eq!(
        failures.len(),
        2 + walks,
        "only the wrong claims may disagree: {failures:#?}"
    );
}
