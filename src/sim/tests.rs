//! The simulator's primitives on small, hand-made inputs: rule matching and jumps, NAT with
//! conntrack reversing it for the reply.

use std::net::{Ipv4Addr, SocketAddrV4};

use super::netfilter::{BranchChoice, Packet, Verdict, Walk};
use super::*;
use crate::net::Protocol;
use crate::net::iptables::{CtState, Match, Rule, Table, Target, stored_probability};

fn demo_state() -> NetState {
    let source = crate::input::Source {
        name: "demo".into(),
        text: include_str!("../../scenarios/demo.yaml").into(),
    };
    let (spec, _) = crate::input::parse(&source).unwrap();
    crate::compile::compile(&crate::model::build(&spec).unwrap().cluster)
}

fn tuple(src: &str, dst: &str) -> Tuple {
    Tuple {
        protocol: Protocol::Tcp,
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
    }
}

fn packet(t: Tuple) -> Packet {
    Packet {
        tuple: t,
        mark: 0,
        iif: Some("eth0".into()),
        oif: Some("eth0".into()),
        ct_state: CtState::New,
        dnat: false,
        bridged: false,
    }
}

fn walk(state: &NetState, table: &Table, pkt: &mut Packet, choice: BranchChoice) -> (Verdict, Vec<Step>) {
    let mut steps = Vec::new();
    let v = Walk {
        host: &state.hosts[0],
        hook: "PREROUTING",
        choice: &choice,
        decisions: &mut 0,
        steps: &mut steps,
    }
    .run(table, pkt);
    (v, steps)
}

#[test]
fn rules_match_on_negated_source_port_mark_and_local_address() {
    let state = demo_state();
    let mut t = Table::new("nat", &["PREROUTING"]);
    let pod_net = "10.0.0.0/14".parse().unwrap();
    t.append(
        "PREROUTING",
        Rule::new(
            vec![Match::Source {
                net: pod_net,
                negated: true,
            }],
            Target::SetXMark {
                value: 0x4000,
                mask: 0x4000,
            },
        ),
    );
    t.append(
        "PREROUTING",
        Rule::new(
            vec![
                Match::Mark {
                    value: 0x4000,
                    mask: 0x4000,
                    negated: false,
                },
                Match::AddrTypeLocal {
                    destination: true,
                    negated: false,
                },
                Match::DestinationPort {
                    protocol: Protocol::Tcp,
                    port: Some(30080),
                },
            ],
            Target::Drop,
        ),
    );
    // From outside the pod network, to node-1's own address on the right port: marked, dropped.
    let mut outside = packet(tuple("192.0.2.7:5000", "10.100.0.2:30080"));
    assert!(matches!(
        walk(&state, &t, &mut outside, BranchChoice::default()).0,
        Verdict::Drop(_)
    ));
    assert_eq!(outside.mark, 0x4000);
    // From a pod: not marked, so the drop rule does not match.
    let mut from_pod = packet(tuple("10.0.1.2:5000", "10.100.0.2:30080"));
    assert_eq!(
        walk(&state, &t, &mut from_pod, BranchChoice::default()).0,
        Verdict::Accept
    );
    // Another node's address is not local to node-1.
    let mut elsewhere = packet(tuple("192.0.2.7:5000", "10.100.0.3:30080"));
    assert_eq!(
        walk(&state, &t, &mut elsewhere, BranchChoice::default()).0,
        Verdict::Accept
    );
}

#[test]
fn a_user_chain_returns_to_its_caller() {
    let state = demo_state();
    let mut t = Table::new("nat", &["PREROUTING"]);
    t.append("PREROUTING", Rule::new(vec![], Target::Jump("A".into())));
    t.append(
        "PREROUTING",
        Rule::new(
            vec![],
            Target::Dnat(SocketAddrV4::new(Ipv4Addr::new(10, 0, 2, 2), 8080)),
        ),
    );
    t.append("A", Rule::new(vec![], Target::Return));
    t.append("A", Rule::new(vec![], Target::Drop));
    let mut p = packet(tuple("10.0.1.2:40000", "10.3.241.152:80"));
    let (v, _) = walk(&state, &t, &mut p, BranchChoice::default());
    assert_eq!(v, Verdict::Accept);
    assert_eq!(p.tuple.dst, "10.0.2.2:8080".parse().unwrap());
}

#[test]
fn statistic_branches_report_their_shares_and_follow_the_choice() {
    let state = demo_state();
    let mut t = Table::new("nat", &["PREROUTING"]);
    for (i, p) in [Some(1.0 / 3.0), Some(0.5), None].iter().enumerate() {
        let mut m = vec![];
        if let Some(p) = p {
            m.push(Match::Statistic {
                stored: stored_probability(*p),
            });
        }
        t.append("PREROUTING", Rule::new(m, Target::Jump(format!("SEP{i}"))));
        t.append(
            &format!("SEP{i}"),
            Rule::new(
                vec![],
                Target::Dnat(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, i as u8 + 1), 80)),
            ),
        );
    }
    let mut p = packet(tuple("10.0.1.2:40000", "10.3.241.152:80"));
    let (_, steps) = walk(
        &state,
        &t,
        &mut p,
        BranchChoice::pinned(vec![Ipv4Addr::new(10, 0, 0, 3)]),
    );
    assert_eq!(*p.tuple.dst.ip(), Ipv4Addr::new(10, 0, 0, 3));
    let Some(Step::LoadBalance { branches, .. }) = steps.first() else {
        panic!("{steps:#?}")
    };
    let shares: Vec<f64> = branches.iter().map(|b| (b.share * 1000.0).round() / 1000.0).collect();
    assert_eq!(shares, vec![0.333, 0.333, 0.333]);
    assert!(branches[2].chosen && !branches[0].chosen);
}

#[test]
fn conntrack_reverses_the_dnat_for_the_reply() {
    let state = demo_state();
    let client = state.host_named("default/pod-a").unwrap();
    let web1 = Ipv4Addr::new(10, 0, 2, 2);
    let mut sim = Simulator::new(&state, BranchChoice::pinned(vec![web1]));
    let sent = client_tuple(
        Protocol::Tcp,
        Ipv4Addr::new(10, 0, 1, 2),
        "10.3.241.152:80".parse().unwrap(),
    );
    let there = sim.request(client, sent);
    let End::Delivered { host, tuple: seen, .. } = there.end else {
        panic!("{:?}", there.end)
    };
    assert_eq!(
        seen.dst,
        SocketAddrV4::new(web1, 8080),
        "the server sees the endpoint address"
    );
    assert_eq!(
        seen.src, sent.src,
        "pod-to-ClusterIP traffic keeps the client's address"
    );
    let back = sim.reply(host, seen, Client::Socket(client));
    assert_eq!(back.end, End::Returned { tuple: sent.reversed() });
    let undnat = back
        .hops
        .iter()
        .flat_map(|h| &h.steps)
        .any(|s| matches!(s, Step::Nat { nat, .. } if nat == "un-DNAT"));
    assert!(undnat, "the reply's source is restored by conntrack");
}

#[test]
fn masquerade_uses_the_outgoing_interface_address() {
    let state = demo_state();
    let client = state.host_named("default/pod-a").unwrap();
    let mut sim = Simulator::new(&state, BranchChoice::default());
    let sent = client_tuple(Protocol::Udp, Ipv4Addr::new(10, 0, 1, 2), "8.8.8.8:53".parse().unwrap());
    let j = sim.request(client, sent);
    assert_eq!(j.end, End::LeftCluster);
    let after = j
        .hops
        .iter()
        .flat_map(|h| &h.steps)
        .find_map(|s| match s {
            Step::Nat { nat, after, .. } if nat == "MASQUERADE" => Some(*after),
            _ => None,
        })
        .expect("egress is masqueraded");
    assert_eq!(*after.src.ip(), Ipv4Addr::new(10, 100, 0, 2), "node-1's eth0 address");
}

#[test]
fn tuples_reverse_twice_to_themselves() {
    let t = tuple("10.0.1.2:40000", "10.3.241.152:80");
    assert_eq!(t.reversed().reversed(), t);
}
