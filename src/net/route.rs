//! Routing tables and the kernel's route lookup: the `local` table first, then `main`; within a
//! table the longest prefix wins, then the lowest metric, then the route listed first.

use std::collections::HashMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::sync::OnceLock;

use ipnet::Ipv4Net;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteType {
    Unicast,
    Local,
    Broadcast,
    Blackhole,
    Unreachable,
    Prohibit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteProto {
    /// Added by the kernel for an address on an interface.
    Kernel,
    /// Added by hand or by a tool (`ip route add`); `ip route` does not print it.
    Boot,
    /// Added by a routing daemon or a cloud's route controller.
    Static,
    /// Learnt over BGP by BIRD (Calico's routes to other nodes' blocks).
    Bird,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Global,
    Link,
    Host,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Route {
    #[serde(rename = "type")]
    pub kind: RouteType,
    pub dst: Ipv4Net,
    pub via: Option<Ipv4Addr>,
    pub dev: Option<String>,
    pub proto: RouteProto,
    pub scope: Scope,
    pub src: Option<Ipv4Addr>,
    pub metric: u32,
    /// `onlink`: the kernel takes the gateway to be on the device's link without checking that
    /// an address of `dev` covers it (flannel's and Calico's tunnel routes, or a scenario's).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub onlink: bool,
    /// Who put the route there, for explanations ("connected route of cbr0").
    #[serde(skip)]
    pub origin: String,
}

impl Route {
    pub fn unicast(dst: Ipv4Net, via: Option<Ipv4Addr>, dev: &str) -> Route {
        Route {
            kind: RouteType::Unicast,
            dst,
            via,
            dev: Some(dev.to_owned()),
            proto: RouteProto::Boot,
            scope: if via.is_some() { Scope::Global } else { Scope::Link },
            src: None,
            metric: 0,
            onlink: false,
            origin: String::new(),
        }
    }

    pub fn onlink(mut self) -> Route {
        self.onlink = true;
        self
    }

    /// The route the kernel adds for an address on an interface, and its two `local`-table
    /// companions: the address itself and the subnet's broadcast address.
    pub fn connected(addr: Ipv4Net, dev: &str) -> (Route, Vec<Route>) {
        let origin = format!("address {addr} on {dev}");
        let kernel = |kind, dst, scope| Route {
            kind,
            dst,
            via: None,
            dev: Some(dev.to_owned()),
            proto: RouteProto::Kernel,
            scope,
            src: Some(addr.addr()),
            metric: 0,
            onlink: false,
            origin: origin.clone(),
        };
        let host = |ip| Ipv4Net::new(ip, 32).expect("/32 is a valid prefix");
        let mut local = vec![kernel(RouteType::Local, host(addr.addr()), Scope::Host)];
        if addr.prefix_len() < 31 {
            local.push(kernel(RouteType::Broadcast, host(addr.broadcast()), Scope::Link));
        }
        (kernel(RouteType::Unicast, addr.trunc(), Scope::Link), local)
    }

    pub fn with_origin(mut self, origin: impl Into<String>) -> Route {
        self.origin = origin.into();
        self
    }
}

impl fmt::Display for Route {
    /// As `ip route show` prints it.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.kind {
            RouteType::Unicast => {}
            RouteType::Local => f.write_str("local ")?,
            RouteType::Broadcast => f.write_str("broadcast ")?,
            RouteType::Blackhole => f.write_str("blackhole ")?,
            RouteType::Unreachable => f.write_str("unreachable ")?,
            RouteType::Prohibit => f.write_str("prohibit ")?,
        }
        if self.dst.prefix_len() == 0 {
            f.write_str("default")?;
        } else if self.dst.prefix_len() == 32 {
            write!(f, "{}", self.dst.addr())?;
        } else {
            write!(f, "{}", self.dst)?;
        }
        if let Some(via) = self.via {
            write!(f, " via {via}")?;
        }
        if let Some(dev) = &self.dev {
            write!(f, " dev {dev}")?;
        }
        match self.proto {
            RouteProto::Kernel => f.write_str(" proto kernel")?,
            RouteProto::Static => f.write_str(" proto static")?,
            RouteProto::Bird => f.write_str(" proto bird")?,
            RouteProto::Boot => {}
        }
        match self.scope {
            Scope::Link if matches!(self.kind, RouteType::Unicast | RouteType::Broadcast) => {
                f.write_str(" scope link")?
            }
            Scope::Host => f.write_str(" scope host")?,
            _ => {}
        }
        if let Some(src) = self.src {
            write!(f, " src {src}")?;
        }
        if self.metric != 0 {
            write!(f, " metric {}", self.metric)?;
        }
        if self.onlink {
            f.write_str(" onlink")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteTable {
    pub name: String,
    /// The routes of this host alone; [`RouteTable::all`] adds the shared ones.
    pub routes: Vec<Route>,
    /// Made on the first lookup of a long table; tables are complete before anything looks
    /// them up, and a table whose length changed since is scanned instead.
    index: PrefixIndex,
    /// Routes every node of a cluster holds alike (one per other node's pod range), kept once
    /// for all of them: 5,000 nodes with a route to each other node would otherwise be 25
    /// million routes.
    pub shared: Option<SharedRoutes>,
}

/// One list of routes held by many hosts, each without the part that is its own.
#[derive(Debug, Clone)]
pub struct SharedRoutes {
    pub table: std::sync::Arc<RouteTable>,
    /// The positions this host does not hold (the routes to its own pod range).
    pub skip: std::ops::Range<usize>,
}

impl PartialEq for SharedRoutes {
    fn eq(&self, other: &SharedRoutes) -> bool {
        self.skip == other.skip && (std::sync::Arc::ptr_eq(&self.table, &other.table) || self.table == other.table)
    }
}

impl Serialize for RouteTable {
    /// As one list, the shared routes after the host's own, as `ip route` shows them.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut t = s.serialize_struct("RouteTable", 2)?;
        t.serialize_field("name", &self.name)?;
        t.serialize_field("routes", &self.all().collect::<Vec<_>>())?;
        t.end()
    }
}

/// A table's routes by prefix length and network, so a lookup asks at most 33 questions instead
/// of testing every route (the cloud router holds one route per node).
#[derive(Debug, Clone, Default)]
struct PrefixIndex(OnceLock<Index>);

#[derive(Debug, Clone)]
struct Index {
    routes: usize,
    /// Longest prefix first; positions into `RouteTable::routes`, in table order.
    by_len: Vec<(u8, HashMap<u32, Vec<usize>>)>,
}

impl PartialEq for PrefixIndex {
    /// An index says nothing a table's routes do not.
    fn eq(&self, _: &PrefixIndex) -> bool {
        true
    }
}

/// Below this many routes a scan is as quick as the index, and needs no memory.
const INDEX_FROM: usize = 32;

fn mask(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

impl Index {
    fn of(routes: &[Route]) -> Index {
        let mut lens: HashMap<u8, HashMap<u32, Vec<usize>>> = HashMap::new();
        for (i, r) in routes.iter().enumerate() {
            let len = r.dst.prefix_len();
            let key = u32::from(r.dst.addr()) & mask(len);
            lens.entry(len).or_default().entry(key).or_default().push(i);
        }
        let mut by_len: Vec<(u8, HashMap<u32, Vec<usize>>)> = lens.into_iter().collect();
        by_len.sort_by_key(|(len, _)| std::cmp::Reverse(*len));
        Index {
            routes: routes.len(),
            by_len,
        }
    }

    /// Positions of the routes whose destination contains `dst`, in table order.
    fn containing(&self, dst: Ipv4Addr) -> Vec<usize> {
        let mut found: Vec<usize> = self
            .by_len
            .iter()
            .filter_map(|(len, nets)| nets.get(&(u32::from(dst) & mask(*len))))
            .flatten()
            .copied()
            .collect();
        found.sort_unstable();
        found
    }
}

impl RouteTable {
    pub fn new(name: &str, routes: Vec<Route>) -> RouteTable {
        RouteTable {
            name: name.to_owned(),
            routes,
            index: PrefixIndex::default(),
            shared: None,
        }
    }

    /// Adds `shared`'s routes after this table's own, less those at the positions in `skip`.
    pub fn with_shared(mut self, table: std::sync::Arc<RouteTable>, skip: std::ops::Range<usize>) -> RouteTable {
        self.shared = Some(SharedRoutes { table, skip });
        self
    }

    /// Every route of the table in order: the host's own, then the shared ones it holds.
    pub fn all(&self) -> impl Iterator<Item = &Route> {
        let shared = self.shared.iter().flat_map(|s| {
            s.table
                .routes
                .iter()
                .enumerate()
                .filter(|(i, _)| !s.skip.contains(i))
                .map(|(_, r)| r)
        });
        self.routes.iter().chain(shared)
    }

    /// How many routes [`RouteTable::all`] yields.
    pub fn len(&self) -> usize {
        self.routes.len()
            + self
                .shared
                .as_ref()
                .map_or(0, |s| s.table.routes.len() - s.skip.len().min(s.table.routes.len()))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The positions of this table's own routes whose destination contains `dst`, in order.
    fn positions(&self, dst: Ipv4Addr) -> Vec<usize> {
        if self.routes.len() >= INDEX_FROM {
            let index = self.index.0.get_or_init(|| Index::of(&self.routes));
            if index.routes == self.routes.len() {
                return index.containing(dst);
            }
        }
        (0..self.routes.len())
            .filter(|&i| self.routes[i].dst.contains(&dst))
            .collect()
    }

    /// The routes whose destination contains `dst`, in table order.
    fn containing(&self, dst: Ipv4Addr) -> Vec<&Route> {
        let mut found: Vec<&Route> = self.positions(dst).into_iter().map(|i| &self.routes[i]).collect();
        if let Some(s) = &self.shared {
            found.extend(
                s.table
                    .positions(dst)
                    .into_iter()
                    .filter(|i| !s.skip.contains(i))
                    .map(|i| &s.table.routes[i]),
            );
        }
        found
    }

    /// A namespace's tables in lookup order: `local`, then `main`.
    pub fn local_and_main(local: Vec<Route>, main: Vec<Route>) -> Vec<RouteTable> {
        vec![RouteTable::new("local", local), RouteTable::new("main", main)]
    }
}

/// Why a matching route lost to the one chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    pub route: String,
    pub reason: String,
}

/// One `ip route get`: the table that answered, the route it chose, and the others that matched.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision<'a> {
    pub table: &'a str,
    pub route: Option<&'a Route>,
    pub rejected: Vec<Rejected>,
}

/// Looks `dst` up in `tables` in order; the first table with a matching route decides.
pub fn lookup(tables: &[RouteTable], dst: Ipv4Addr) -> Decision<'_> {
    for table in tables {
        let candidates = table.containing(dst);
        // A broadcast route answers only for the broadcast address itself, never as a fallback.
        let candidates: Vec<&Route> = candidates
            .into_iter()
            .filter(|r| r.kind != RouteType::Broadcast || r.dst.addr() == dst)
            .collect();
        let Some(best) = best_of(&candidates) else { continue };
        let rejected = candidates
            .iter()
            .filter(|r| !std::ptr::eq(**r, best))
            .map(|r| Rejected {
                route: r.to_string(),
                reason: why_lost(best, r),
            })
            .collect();
        return Decision {
            table: &table.name,
            route: Some(best),
            rejected,
        };
    }
    Decision {
        table: tables.last().map(|t| t.name.as_str()).unwrap_or("main"),
        route: None,
        rejected: Vec::new(),
    }
}

fn best_of<'a>(candidates: &[&'a Route]) -> Option<&'a Route> {
    let mut best: Option<&Route> = None;
    for r in candidates {
        best = match best {
            None => Some(r),
            Some(b)
                if (r.dst.prefix_len(), std::cmp::Reverse(r.metric))
                    > (b.dst.prefix_len(), std::cmp::Reverse(b.metric)) =>
            {
                Some(r)
            }
            keep => keep,
        };
    }
    best
}

fn why_lost(winner: &Route, loser: &Route) -> String {
    let (w, l) = (winner.dst.prefix_len(), loser.dst.prefix_len());
    if w != l {
        format!("/{w} is longer than /{l}")
    } else if winner.metric != loser.metric {
        format!("same prefix, metric {} is lower than {}", winner.metric, loser.metric)
    } else {
        "same prefix and metric; the kernel keeps the route added first".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }
    fn table(name: &str, routes: Vec<Route>) -> RouteTable {
        RouteTable::new(name, routes)
    }

    #[test]
    fn a_long_table_answers_as_a_scan_does() {
        // One route per node, as the cloud router holds them, with a default route, a
        // covering /16 and a duplicate /24 that loses on metric.
        let mut routes = vec![
            Route::unicast(net("0.0.0.0/0"), None, "uplink"),
            Route::unicast(net("10.0.0.0/16"), None, "eth0"),
        ];
        for i in 0..200u32 {
            let dst = Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 | (i << 8)), 24).unwrap();
            routes.push(Route::unicast(dst, Some(ip("10.100.0.2")), "eth0"));
        }
        let mut loser = Route::unicast(net("10.0.7.0/24"), Some(ip("10.100.0.9")), "eth0");
        loser.metric = 9;
        routes.push(loser);
        let indexed = [table("main", routes.clone())];
        for dst in ["10.0.7.1", "10.0.199.3", "10.0.250.1", "192.0.2.1"] {
            let d = lookup(&indexed, ip(dst));
            let scanned: Vec<&Route> = routes.iter().filter(|r| r.dst.contains(&ip(dst))).collect();
            assert_eq!(d.rejected.len() + 1, scanned.len(), "{dst}");
            let best = d.route.unwrap();
            assert!(
                scanned.iter().all(|r| r.dst.prefix_len() <= best.dst.prefix_len()),
                "{dst}"
            );
        }
        let d = lookup(&indexed, ip("10.0.7.1"));
        assert_eq!(d.route.unwrap().via, Some(ip("10.100.0.2")));
        let reasons: Vec<&str> = d.rejected.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "/24 is longer than /0",
                "/24 is longer than /16",
                "same prefix, metric 0 is lower than 9"
            ]
        );
    }

    #[test]
    fn longer_prefix_beats_lower_metric() {
        let mut wide = Route::unicast(net("10.0.0.0/16"), Some(ip("10.100.0.5")), "eth0");
        wide.metric = 1;
        let mut narrow = Route::unicast(net("10.0.2.0/24"), Some(ip("10.100.0.3")), "eth0");
        narrow.metric = 500;
        let tables = [table("main", vec![wide, narrow.clone()])];
        let d = lookup(&tables, ip("10.0.2.7"));
        assert_eq!(d.route, Some(&narrow));
        assert_eq!(d.rejected[0].reason, "/24 is longer than /16");
    }

    #[test]
    fn metric_breaks_a_tie_between_equal_prefixes() {
        let mut a = Route::unicast(net("10.0.2.0/24"), Some(ip("10.100.0.3")), "eth0");
        a.metric = 100;
        let mut b = Route::unicast(net("10.0.2.0/24"), Some(ip("10.100.0.4")), "eth0");
        b.metric = 50;
        let tables = [table("main", vec![a, b.clone()])];
        let d = lookup(&tables, ip("10.0.2.7"));
        assert_eq!(d.route, Some(&b));
        assert_eq!(d.rejected[0].reason, "same prefix, metric 50 is lower than 100");
    }

    #[test]
    fn local_table_is_consulted_first() {
        let (connected, local) = Route::connected(net("10.0.1.1/24"), "cbr0");
        let default = Route::unicast(net("0.0.0.0/0"), Some(ip("10.100.0.1")), "eth0");
        let tables = [table("local", local), table("main", vec![default, connected])];
        let d = lookup(&tables, ip("10.0.1.1"));
        assert_eq!(d.table, "local");
        assert_eq!(d.route.unwrap().kind, RouteType::Local);
        let d = lookup(&tables, ip("10.0.1.9"));
        assert_eq!(d.table, "main");
        assert_eq!(d.route.unwrap().dev.as_deref(), Some("cbr0"));
    }

    #[test]
    fn blackhole_is_chosen_like_any_route() {
        let mut hole = Route::unicast(net("10.0.2.0/24"), None, "eth0");
        hole.kind = RouteType::Blackhole;
        hole.dev = None;
        let default = Route::unicast(net("0.0.0.0/0"), Some(ip("10.100.0.1")), "eth0");
        let tables = [table("main", vec![default, hole])];
        let d = lookup(&tables, ip("10.0.2.2"));
        assert_eq!(d.route.unwrap().kind, RouteType::Blackhole);
        assert_eq!(d.route.unwrap().to_string(), "blackhole 10.0.2.0/24");
    }

    #[test]
    fn nothing_matching_is_no_route() {
        let tables = [table("main", vec![Route::unicast(net("10.0.1.0/24"), None, "eth0")])];
        assert_eq!(lookup(&tables, ip("192.0.2.1")).route, None);
    }

    #[test]
    fn prints_as_ip_route_does() {
        let (connected, local) = Route::connected(net("10.0.1.1/24"), "cbr0");
        assert_eq!(
            connected.to_string(),
            "10.0.1.0/24 dev cbr0 proto kernel scope link src 10.0.1.1"
        );
        assert_eq!(
            local[0].to_string(),
            "local 10.0.1.1 dev cbr0 proto kernel scope host src 10.0.1.1"
        );
        assert_eq!(
            local[1].to_string(),
            "broadcast 10.0.1.255 dev cbr0 proto kernel scope link src 10.0.1.1"
        );
        let default = Route::unicast(net("0.0.0.0/0"), Some(ip("10.100.0.1")), "eth0");
        assert_eq!(default.to_string(), "default via 10.100.0.1 dev eth0");
    }
}
