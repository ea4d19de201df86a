//! kube-proxy's `KUBE-FIREWALL` against the kernel: with `route_localnet` on, a neighbour on the
//! node network can address a packet to a node's 127.0.0.1 (CVE-2020-8558). The simulator says
//! the node drops it in `KUBE-FIREWALL`; the kernel must drop it there too.

use std::net::SocketAddrV4;
use std::process::Command;
use std::time::Duration;

use k8snet::net::{NetState, Protocol};
use k8snet::sim::netfilter::BranchChoice;
use k8snet::sim::{End, Simulator};
use k8snet::trace::Tuple;

use crate::lab::{self, Lab, output};

/// The packets the `KUBE-FIREWALL` DROP rule has counted on `host`.
fn dropped_by_kube_firewall(lab: &Lab, host: usize) -> u64 {
    let out = output(lab.exec(
        host,
        &["iptables", "-t", "filter", "-L", "KUBE-FIREWALL", "-v", "-x", "-n"],
    ));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.contains("block incoming localnet connections"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

pub fn a_neighbours_packet_for_127_0_0_1_is_dropped_in_kube_firewall(state: NetState) {
    let node = state.host_named("node-1").expect("node-1");
    let neighbour = state.host_named("node-2").expect("node-2");
    let node_ip = state.hosts[node].primary_addr("eth0").expect("node-1 has an address");
    let neighbour_ip = state.hosts[neighbour]
        .primary_addr("eth0")
        .expect("node-2 has an address");
    let target: SocketAddrV4 = "127.0.0.1:10248".parse().expect("an address");

    let tuple = Tuple {
        protocol: Protocol::Tcp,
        src: SocketAddrV4::new(neighbour_ip, 40000),
        dst: target,
    };
    let end = Simulator::new(&state, BranchChoice::default())
        .arrive(node, "eth0", tuple)
        .end;
    assert!(
        matches!(&end, End::Dropped { rule, .. } if rule.starts_with("-A KUBE-FIREWALL")),
        "the simulator: {end:?}"
    );

    let lab = Lab::build(state);
    // A service on the node's loopback, as the kubelet's healthz is.
    let mut listener = lab
        .exec(
            node,
            &[
                "timeout",
                "5",
                "socat",
                "TCP-LISTEN:10248,bind=127.0.0.1,reuseaddr",
                "-",
            ],
        )
        .spawn()
        .expect("socat starts");
    std::thread::sleep(Duration::from_millis(200));
    // The neighbour sends to 127.0.0.1 through node-1, as an attacker on the link can: a rule
    // ahead of the local table, and route_localnet so its kernel lets such a packet out. It is
    // no node: a node's own KUBE-FIREWALL would drop the packet in OUTPUT before it left.
    let via = format!("{node_ip}");
    for args in [
        vec!["iptables", "-t", "filter", "-F", "KUBE-FIREWALL"],
        vec!["sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1"],
        vec![
            "ip",
            "route",
            "add",
            "127.0.0.1/32",
            "via",
            &via,
            "dev",
            "eth0",
            "table",
            "100",
        ],
        vec!["ip", "rule", "add", "pref", "10", "lookup", "local"],
        vec!["ip", "rule", "del", "pref", "0"],
        vec!["ip", "rule", "add", "pref", "0", "to", "127.0.0.1/32", "lookup", "100"],
    ] {
        let out = output(lab.exec(neighbour, &args));
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let before = dropped_by_kube_firewall(&lab, node);
    let out = output(lab.exec(
        neighbour,
        &[
            "timeout",
            "3",
            "socat",
            "-u",
            "/dev/null",
            "TCP:127.0.0.1:10248,connect-timeout=1",
        ],
    ));
    let after = dropped_by_kube_firewall(&lab, node);
    let _ = Command::new("kill").arg(listener.id().to_string()).status();
    let _ = listener.wait();
    assert!(!out.status.success(), "the neighbour reached node-1's loopback");
    assert!(
        after > before,
        "the kernel did not drop the packet in KUBE-FIREWALL ({before} -> {after} packets): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    crate::say(&format!(
        "KUBE-FIREWALL: a neighbour's SYN for node-1's 127.0.0.1 is dropped there by the kernel (counted {} times), as the simulator says",
        after - before
    ));
}

#[test]
fn kube_firewall_drops_a_neighbours_packet_for_localhost() {
    if let lab::Gate::Skip(why) = lab::gate() {
        crate::say(&why);
        return;
    }
    let source = k8snet::input::Source {
        name: "scenarios/demo.yaml".into(),
        text: std::fs::read_to_string("scenarios/demo.yaml").expect("the demo reads"),
    };
    let c = crate::cluster_of(&source);
    a_neighbours_packet_for_127_0_0_1_is_dropped_in_kube_firewall(k8snet::compile::compile(&c));
}
