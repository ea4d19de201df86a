//! `k8snet materialize`: the compiled network state written out as a POSIX shell script that
//! builds it for real, one network namespace per host, and the script that removes it again.
//!
//! The writer knows only Linux objects: it walks hosts, interfaces, links, routes and netfilter
//! tables, so any host the compiler produces is built the same way. Nothing it writes touches
//! the root namespace: even the shared node network becomes a bridge in a namespace of its own,
//! and the way out to the world is a bridge without ports, where packets end.

mod names;

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::net::iptables::{Policy, Table};
use crate::net::route::{Route, RouteProto, RouteType, Scope};
use crate::net::{Host, Link, NetState};
use crate::render::untrusted;

pub use names::{
    DEFAULT_PREFIX, MAX_IFNAME, MAX_PREFIX, SEGMENT_BRIDGE, netns_name, quote, segment_netns_name, segment_port_name,
    valid_ifname, validate_prefix,
};

/// A namespace the script creates: a host, or a segment's bridge.
struct Namespace {
    name: String,
    label: String,
}

/// Every namespace of `state`, hosts first, then one per segment, with the names checked.
fn namespaces(state: &NetState, prefix: &str) -> Result<(Vec<Namespace>, Vec<String>), String> {
    validate_prefix(prefix)?;
    let mut all: Vec<Namespace> = state
        .hosts
        .iter()
        .map(|h| Namespace {
            name: netns_name(prefix, &h.name),
            label: h.name.clone(),
        })
        .collect();
    let segments = segments(state);
    all.extend(segments.iter().map(|s| Namespace {
        name: segment_netns_name(prefix, s),
        label: format!("the {s} segment"),
    }));
    let mut seen = BTreeSet::new();
    for ns in &all {
        if !seen.insert(&ns.name) {
            return Err(format!("two namespaces would be named {}", ns.name));
        }
    }
    Ok((all, segments))
}

fn segments(state: &NetState) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for i in state.hosts.iter().flat_map(|h| &h.interfaces) {
        if let Link::Segment { segment } = &i.link
            && !names.contains(segment)
        {
            names.push(segment.clone());
        }
    }
    names
}

/// Checks what the kernel would refuse, so the script fails here rather than half-way.
/// IPVS needs the `ip_vs` module and a dummy device (`kube-ipvs0`), neither of which this
/// script may count on (the kernels it was checked on have neither): refused, not half built.
fn buildable(state: &NetState) -> Result<(), String> {
    if state.hosts.iter().any(|h| h.ipvs.is_some()) {
        return Err(
            "kube-proxy's IPVS mode needs the kernel's ip_vs module and a dummy device \
                    (kube-ipvs0), which the script does not build; IPVS is modelled, not materialized \
                    (use `kubeProxy: iptables` or `nftables` to build the cluster)"
                .to_owned(),
        );
    }
    Ok(())
}

fn check(state: &NetState) -> Result<(), String> {
    buildable(state)?;
    for (hi, h) in state.hosts.iter().enumerate() {
        for i in &h.interfaces {
            if !valid_ifname(&i.name) {
                return Err(format!(
                    "interface `{}` of {} is not a name Linux accepts (at most {MAX_IFNAME} characters, no `/`, `:` or spaces)",
                    i.name, h.name
                ));
            }
            if let Link::Veth { peer_host, peer_if } = &i.link {
                let back = state.hosts.get(*peer_host).and_then(|p| p.interface(peer_if));
                if !matches!(back.map(|b| &b.link), Some(Link::Veth { peer_host: p, peer_if: q }) if *p == hi && *q == i.name)
                {
                    return Err(format!(
                        "the veth {} of {} names a peer that does not name it back",
                        i.name, h.name
                    ));
                }
            }
            if let Some(m) = &i.master
                && !matches!(h.interface(m).map(|b| &b.link), Some(Link::Bridge))
            {
                return Err(format!(
                    "{} of {} is a port of `{m}`, which is not a bridge",
                    i.name, h.name
                ));
            }
        }
    }
    Ok(())
}

/// The script that builds `state` under `prefix`. `source` names the scenario in its header,
/// escaped: it is a file name, and may hold anything.
pub fn build(state: &NetState, prefix: &str, source: &str) -> Result<String, String> {
    let (all, segments) = namespaces(state, prefix)?;
    check(state)?;
    let ns = |i: usize| quote(&all[i].name);
    let seg_ns = |s: &str| quote(&segment_netns_name(prefix, s));
    let mut out = String::new();
    let w = &mut out;
    header(w, source, all.len(), prefix);
    if state.hosts.iter().any(|h| h.service_lb.is_some()) {
        let _ = writeln!(
            w,
            "# Cilium's kube-proxy replacement is eBPF programs, which this script does not load: in the\n\
             # namespaces it builds, nothing translates Services."
        );
    }

    section(w, "Namespaces, each with its sysctls pinned.");
    for (i, n) in all.iter().enumerate() {
        let host = state.hosts.get(i);
        let _ = writeln!(
            w,
            "netns {} {} {} {}  # {}",
            ns(i),
            u8::from(host.is_some_and(|h| h.ip_forward)),
            u8::from(host.is_some_and(|h| h.bridge_nf_call_iptables)),
            u8::from(host.is_some_and(|h| h.route_localnet)),
            untrusted::escape(&n.label)
        );
    }

    section(
        w,
        "Links. Each veth pair is made once, directly between its two namespaces.",
    );
    for (hi, h) in state.hosts.iter().enumerate() {
        for i in &h.interfaces {
            let name = quote(&i.name);
            match &i.link {
                // Refused before anything is written (`materialize` checks for IPVS first).
                Link::Loopback | Link::Dummy => {}
                Link::Veth { peer_host, peer_if } => {
                    // One pair, two ends: the end listed first makes it.
                    if (*peer_host, peer_if.as_str()) > (hi, i.name.as_str()) {
                        let _ = writeln!(
                            w,
                            "ip -n {} link add {name} type veth peer name {} netns {}",
                            ns(hi),
                            quote(peer_if),
                            ns(*peer_host)
                        );
                    }
                }
                Link::Bridge => {
                    let _ = writeln!(w, "ip -n {} link add {name} type bridge", ns(hi));
                }
                Link::Segment { segment } => {
                    let _ = writeln!(
                        w,
                        "ip -n {} link add {name} type veth peer name {} netns {}",
                        ns(hi),
                        quote(&segment_port_name(&h.name, &i.name)),
                        seg_ns(segment)
                    );
                }
                Link::Uplink => {
                    let _ = writeln!(
                        w,
                        "ip -n {} link add {name} type bridge  # the world: no ports, so nothing sent here goes further",
                        ns(hi)
                    );
                }
                Link::Vxlan(v) => {
                    let _ = writeln!(
                        w,
                        "ip -n {} link add {name} type vxlan id {} local {} dev {} dstport {} nolearning",
                        ns(hi),
                        v.vni,
                        v.local,
                        quote(&v.underlay),
                        v.port
                    );
                    let _ = writeln!(w, "ip -n {} link set {name} address {} mtu {}", ns(hi), v.mac, v.mtu);
                }
                Link::Ipip { local, underlay } => {
                    // The kernel's fallback device tunl0 appears when the ipip module loads.
                    let _ = writeln!(
                        w,
                        "ip -n {} link add {name} type ipip local {local} dev {} || ip -n {} link set {name} type ipip local {local} dev {}",
                        ns(hi),
                        quote(underlay),
                        ns(hi),
                        quote(underlay)
                    );
                }
            }
        }
    }
    for s in &segments {
        let _ = writeln!(w, "ip -n {} link add {} type bridge", seg_ns(s), quote(SEGMENT_BRIDGE));
        for h in &state.hosts {
            for i in h
                .interfaces
                .iter()
                .filter(|i| matches!(&i.link, Link::Segment { segment } if segment == s))
            {
                let port = quote(&segment_port_name(&h.name, &i.name));
                let _ = writeln!(
                    w,
                    "ip -n {} link set {port} master {} up",
                    seg_ns(s),
                    quote(SEGMENT_BRIDGE)
                );
            }
        }
        let _ = writeln!(w, "ip -n {} link set {} up", seg_ns(s), quote(SEGMENT_BRIDGE));
    }

    section(w, "Bridge ports, addresses, and every interface up.");
    for (hi, h) in state.hosts.iter().enumerate() {
        let _ = writeln!(w, "# {}", untrusted::escape(&h.name));
        for i in &h.interfaces {
            let name = quote(&i.name);
            if let Some(master) = &i.master {
                let _ = writeln!(w, "ip -n {} link set {name} master {}", ns(hi), quote(master));
                let _ = writeln!(
                    w,
                    "ip -n {} link set {name} type bridge_slave hairpin {}",
                    ns(hi),
                    on_off(i.hairpin)
                );
            }
            if i.link == Link::Bridge {
                let _ = writeln!(w, "ip -n {} link set {name} promisc {}", ns(hi), on_off(i.promiscuous));
            }
            // An unnumbered veth between two forwarding hosts (the router's uplink, the load
            // balancer's links, whose only addresses are /32s) carries anything sent out of it in
            // the model, as a point-to-point link would; the kernel resolves each destination
            // with ARP there, so the far end answers for whatever it routes elsewhere (proxy
            // ARP), at once.
            let unnumbered = i.addrs.iter().all(|a| a.prefix_len() == 32);
            if i.proxy_arp || matches!(i.link, Link::Veth { .. }) && unnumbered && i.master.is_none() && h.ip_forward {
                let _ = writeln!(
                    w,
                    "ip netns exec {} sysctl -qw {} {}",
                    ns(hi),
                    quote(&format!("net/ipv4/conf/{}/proxy_arp=1", i.name)),
                    quote(&format!("net/ipv4/neigh/{}/proxy_delay=0", i.name))
                );
            }
            for a in &i.addrs {
                // The kernel gives lo its 127.0.0.1/8 when lo comes up.
                if i.link == Link::Loopback && a.to_string() == "127.0.0.1/8" {
                    continue;
                }
                let _ = writeln!(w, "ip -n {} addr add {a} dev {name}", ns(hi));
            }
            let _ = writeln!(w, "ip -n {} link set {name} up", ns(hi));
        }
    }

    section(
        w,
        "Routes the kernel does not make by itself (it makes those of the addresses). `append` keeps\n\
         the listed order among routes of equal prefix and metric, as the first one added wins.",
    );
    for (hi, h) in state.hosts.iter().enumerate() {
        for table in &h.tables {
            for r in table.all().filter(|r| r.proto != RouteProto::Kernel) {
                let _ = writeln!(
                    w,
                    "ip -n {} route append {}",
                    ns(hi),
                    route_words(h, &table.name, r).join(" ")
                );
            }
        }
    }

    let tunnels: Vec<(usize, &str, &crate::net::vxlan::Vxlan)> = state
        .hosts
        .iter()
        .enumerate()
        .flat_map(|(hi, h)| {
            h.interfaces.iter().filter_map(move |i| match &i.link {
                Link::Vxlan(v) => Some((hi, i.name.as_str(), v)),
                _ => None,
            })
        })
        .collect();
    if !tunnels.is_empty() {
        section(
            w,
            "Tunnel endpoints: a permanent neighbour and FDB entry for each remote VTEP.",
        );
    }
    for (hi, dev, v) in tunnels {
        for p in v.entries() {
            let _ = writeln!(
                w,
                "ip -n {} neigh add {} lladdr {} dev {} nud permanent",
                ns(hi),
                p.addr,
                p.mac,
                quote(dev)
            );
            let _ = writeln!(
                w,
                "ip netns exec {} bridge fdb add {} dev {} dst {} self permanent",
                ns(hi),
                p.mac,
                quote(dev),
                p.remote
            );
        }
    }

    let loaded: Vec<(usize, &Host)> = state
        .hosts
        .iter()
        .enumerate()
        .filter(|(_, h)| !is_empty(&h.nat) || !is_empty(&h.filter))
        .collect();
    if !loaded.is_empty() {
        section(w, "Netfilter rules, exactly as `k8snet explain` shows them.");
    }
    for (hi, h) in loaded {
        // Rules that match a set need it to exist when they are loaded.
        if !h.ipsets.is_empty() {
            let sets = h.ipsets.save();
            let mut end = "SETS".to_owned();
            while sets.lines().any(|l| l == end) {
                end.push('_');
            }
            let _ = writeln!(w, "ip netns exec {} ipset restore <<'{end}'\n{sets}{end}", ns(hi));
        }
        let mut rules = String::new();
        for t in [&h.nat, &h.filter] {
            if !is_empty(t) {
                rules.push_str(&t.save());
            }
        }
        let mut end = "RULES".to_owned();
        while rules.lines().any(|l| l == end) {
            end.push('_');
        }
        let _ = writeln!(w, "ip netns exec {} iptables-restore <<'{end}'\n{rules}{end}", ns(hi));
    }
    // kube-proxy's nftables table goes in after the iptables tables, as kube-proxy starts after
    // them: at one priority its chains then run first, which the simulator assumes.
    let nft: Vec<(usize, &crate::net::nftables::Table)> = state
        .hosts
        .iter()
        .enumerate()
        .filter_map(|(i, h)| h.nftables.as_ref().map(|t| (i, t)))
        .collect();
    if !nft.is_empty() {
        section(w, "kube-proxy's nftables table, exactly as `k8snet explain` lists it.");
    }
    for (hi, table) in nft {
        let rules = crate::net::nftables::script_of(table)?;
        let mut end = "NFT".to_owned();
        while rules.lines().any(|l| l == end) {
            end.push('_');
        }
        let _ = writeln!(w, "ip netns exec {} nft -f - <<'{end}'\n{rules}{end}", ns(hi));
    }
    Ok(out)
}

/// The script that removes every namespace [`build`] creates; their interfaces go with them.
pub fn teardown(state: &NetState, prefix: &str, source: &str) -> Result<String, String> {
    buildable(state)?;
    let (all, _) = namespaces(state, prefix)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "#!/bin/sh\n# Removes what `k8snet materialize` built from {source} under the prefix {prefix}:\n\
         # {} network namespaces, and with them every interface, route and rule inside.\nset -eu",
        all.len(),
        source = untrusted::escape(source),
    );
    for n in &all {
        let _ = writeln!(out, "ip netns del {} 2>/dev/null || true", quote(&n.name));
    }
    Ok(out)
}

/// Sysctls set in every namespace, because their inherited values change what the kernel does:
/// reverse-path filtering drops pod traffic a node forwards back out of its bridge, ICMP
/// redirects teach a sender a shortcut past the node's NAT, and rate-limited ICMP errors turn a
/// refused connection into a silent one.
const PINNED: &[&str] = &[
    "net.ipv4.conf.all.rp_filter=0",
    "net.ipv4.conf.default.rp_filter=0",
    "net.ipv4.conf.lo.rp_filter=0",
    "net.ipv4.conf.all.accept_local=0",
    "net.ipv4.conf.default.accept_local=0",
    "net.ipv4.conf.all.accept_redirects=0",
    "net.ipv4.conf.default.accept_redirects=0",
    "net.ipv4.conf.all.send_redirects=0",
    "net.ipv4.conf.default.send_redirects=0",
    "net.ipv4.conf.all.proxy_arp=0",
    "net.ipv4.conf.default.proxy_arp=0",
    "net.ipv4.conf.all.arp_ignore=0",
    "net.ipv4.conf.default.arp_ignore=0",
    "net.ipv4.conf.all.arp_announce=0",
    "net.ipv4.conf.default.arp_announce=0",
    "net.ipv4.icmp_ratelimit=0",
];

fn header(w: &mut String, source: &str, count: usize, prefix: &str) {
    let _ = writeln!(
        w,
        "#!/bin/sh\n\
         # Builds the network of {source} for real: {count} network namespaces named {prefix}*.\n\
         # Run it as root; it never changes the root namespace. Remove it with the script that\n\
         # `k8snet materialize --teardown` prints.\n\
         set -eu\n\
         \n\
         # netns NAME IP_FORWARD BRIDGE_NF_CALL_IPTABLES ROUTE_LOCALNET: a new namespace inherits IPv4 sysctls from\n\
         # the root namespace, so pin them before any interface exists (a new interface copies the\n\
         # namespace's `default` values). net.bridge.bridge-nf-call-iptables exists only while the\n\
         # br_netfilter module is loaded; without it bridged frames never meet iptables, as with 0.\n\
         netns() {{\n\
         \x20 ip netns add \"$1\"\n\
         \x20 ip netns exec \"$1\" sysctl -qw \\\n\
         {pins}\
         \x20   net.ipv4.ip_forward=\"$2\" \\\n\
         \x20   net.ipv4.conf.all.route_localnet=\"$4\"\n\
         \x20 if ip netns exec \"$1\" test -e /proc/sys/net/bridge/bridge-nf-call-iptables; then\n\
         \x20   ip netns exec \"$1\" sysctl -qw net.bridge.bridge-nf-call-iptables=\"$3\"\n\
         \x20 elif [ \"$3\" = 1 ]; then\n\
         \x20   echo \"$1 needs bridge netfilter: load the br_netfilter module\" >&2\n\
         \x20   exit 1\n\
         \x20 fi\n\
         }}",
        pins = PINNED.iter().map(|p| format!("    {p} \\\n")).collect::<String>(),
        source = untrusted::escape(source),
    );
}

fn section(w: &mut String, title: &str) {
    w.push('\n');
    for line in title.lines() {
        let _ = writeln!(w, "# {line}");
    }
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// A table holds something to load: a rule, a user chain, or a policy other than ACCEPT.
fn is_empty(t: &Table) -> bool {
    t.chains()
        .all(|c| c.rules.is_empty() && c.policy == Some(Policy::Accept))
}

/// `ip route append` arguments for `r`, with the names in them quoted. The scope is written only where it differs from the
/// one `ip` would pick, and a gateway outside every subnet of its device gets `onlink`, so the
/// kernel takes the route (and, like the simulator, finds no neighbour behind it).
fn route_words(h: &Host, table: &str, r: &Route) -> Vec<String> {
    let mut t: Vec<String> = Vec::new();
    let kind = match r.kind {
        RouteType::Unicast => None,
        RouteType::Local => Some("local"),
        RouteType::Broadcast => Some("broadcast"),
        RouteType::Blackhole => Some("blackhole"),
        RouteType::Unreachable => Some("unreachable"),
        RouteType::Prohibit => Some("prohibit"),
    };
    t.extend(kind.map(str::to_owned));
    t.push(if r.dst.prefix_len() == 0 {
        "default".to_owned()
    } else {
        r.dst.to_string()
    });
    if let Some(via) = r.via {
        t.extend(["via".to_owned(), via.to_string()]);
    }
    if let Some(dev) = &r.dev {
        t.extend(["dev".to_owned(), quote(dev)]);
    }
    if let (Some(via), Some(dev)) = (r.via, &r.dev)
        && !r.onlink
        && !h
            .interface(dev)
            .is_some_and(|i| i.addrs.iter().any(|a| a.trunc().contains(&via)))
    {
        t.push("onlink".into());
    }
    if r.onlink {
        t.push("onlink".into());
    }
    if table != "main" {
        t.extend(["table".to_owned(), quote(table)]);
    }
    match r.proto {
        RouteProto::Static => t.extend(["proto".to_owned(), "static".to_owned()]),
        RouteProto::Bird => t.extend(["proto".to_owned(), "bird".to_owned()]),
        RouteProto::Kernel | RouteProto::Boot => {}
    }
    if r.onlink && !t.iter().any(|w| w == "onlink") {
        t.push("onlink".into());
    }
    let default_scope = match r.kind {
        RouteType::Local => Scope::Host,
        RouteType::Broadcast => Scope::Link,
        RouteType::Unicast if r.via.is_none() => Scope::Link,
        _ => Scope::Global,
    };
    if r.scope != default_scope {
        let s = match r.scope {
            Scope::Global => "global",
            Scope::Link => "link",
            Scope::Host => "host",
        };
        t.extend(["scope".to_owned(), s.to_owned()]);
    }
    if let Some(src) = r.src {
        t.extend(["src".to_owned(), src.to_string()]);
    }
    if r.metric != 0 {
        t.extend(["metric".to_owned(), r.metric.to_string()]);
    }
    t
}
