//! The kernel's own rule-by-rule walk: a TRACE rule in the raw table marks every packet, and
//! `xtables-monitor --trace` in the namespace prints each rule that matched it, in the order
//! the kernel met them. Needs the nf_tables backend of iptables.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::lab::{Lab, output, run_with_input};

/// Whether `iptables` is the nf_tables backend, the one whose TRACE `xtables-monitor` prints.
pub fn available() -> bool {
    let out = output({
        let mut c = Command::new("iptables");
        c.arg("--version");
        c
    });
    String::from_utf8_lossy(&out.stdout).contains("nf_tables")
        && std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .any(|d| d.join("xtables-monitor").is_file())
}

/// Packets are traced while their TTL is above this: up to five forwarding hops from a sender,
/// more than any path in a lab without a loop.
const MIN_TTL: u8 = 58;

/// Client ports no flow uses, for the marker packets that show a monitor has started, and has
/// printed everything before it.
const START_MARKER: u16 = 40999;
const END_MARKER: u16 = 40998;

/// Sends marker packets from `port` until the monitor has printed one; false if it stays
/// silent for `wait`.
fn await_marker(lab: &Lab, m: &Monitor, port: u16, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    let marker = format!("SPORT={port} ");
    while !m.lines.lock().expect("lines").iter().any(|l| l.contains(&marker)) {
        if Instant::now() >= deadline {
            return false;
        }
        let send = format!("UDP:127.0.0.1:9,sourceport={port},reuseaddr");
        let _ = run_with_input(
            &mut lab.exec(m.host, &["timeout", "2", "socat", "-t0.01", "-u", "-", &send]),
            "x\n",
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

pub struct Monitor {
    pub host: usize,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
}

/// Starts tracing in each of `hosts` and returns once every monitor has seen a packet.
pub fn start(lab: &Lab, hosts: &[usize]) -> Vec<Monitor> {
    let mut monitors = Vec::new();
    for &host in hosts {
        // Only what is compared (a connection's first packet, on its first few hops) is
        // traced: tracing every packet, or a routing loop's 64 laps, overflows the monitor's
        // socket, and then it loses events.
        let mut rules = String::from("*raw\n");
        for hook in ["PREROUTING", "OUTPUT"] {
            // Not the outer packets of a VXLAN tunnel (flannel's 8472, Calico's 4789): no trace
            // step is a walk of theirs to compare, and their events would crowd the monitor's.
            for m in [
                "-p tcp -m tcp --syn",
                "-p udp -m multiport ! --dports 4789,8472",
                "-p icmp --icmp-type echo-request",
            ] {
                rules.push_str(&format!("-A {hook} {m} -m ttl --ttl-gt {MIN_TTL} -j TRACE\n"));
            }
        }
        rules.push_str("COMMIT\n");
        let out = run_with_input(&mut lab.exec(host, &["iptables-restore", "--noflush"]), &rules);
        assert!(
            out.status.success(),
            "TRACE rules: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        monitors.push(spawn(lab, host));
    }
    // A monitor subscribes some time after it starts; a packet it prints proves it listens. Now
    // and then one never hears anything (seen about once in five runs under load): it is
    // replaced, a few times, before the run gives up.
    for m in &mut monitors {
        let mut attempts = 1;
        while !await_marker(lab, m, START_MARKER, Duration::from_secs(5)) {
            assert!(attempts < 4, "xtables-monitor stays silent in {}", lab.netns(m.host));
            attempts += 1;
            let host = m.host;
            let silent = std::mem::replace(m, spawn(lab, host));
            silent.kill();
        }
    }
    monitors
}

fn spawn(lab: &Lab, host: usize) -> Monitor {
    // Line-buffered: a pipe would otherwise hold the last lines when the monitor stops.
    let mut child = lab
        .exec(host, &["timeout", "120", "stdbuf", "-oL", "xtables-monitor", "--trace"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xtables-monitor starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            sink.lock().expect("lines").push(line);
        }
    });
    Monitor {
        host,
        child,
        lines,
        reader: Some(reader),
    }
}

impl Monitor {
    fn kill(mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// Stops the monitors and returns what each printed. Events reach a monitor in order, so once
/// it has printed a last marker it has printed everything before. A monitor that lost events
/// (its netlink socket overflows when a busy node traces many flows at once: it then misses the
/// last marker, or reports an error) is left out, and said so: a walk with holes in it would
/// look like a disagreement. Its namespace's other checks still run.
pub fn stop(lab: &Lab, monitors: Vec<Monitor>) -> Vec<(usize, Vec<String>)> {
    let complete: Vec<bool> = monitors
        .iter()
        .map(|m| await_marker(lab, m, END_MARKER, Duration::from_secs(10)))
        .collect();
    monitors
        .into_iter()
        .zip(complete)
        .filter_map(|(mut m, complete)| {
            let _ = Command::new("kill").arg(m.child.id().to_string()).status();
            let _ = m.child.wait();
            if let Some(r) = m.reader.take() {
                let _ = r.join();
            }
            let mut errors = String::new();
            if let Some(mut e) = m.child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut errors);
            }
            if !complete || !errors.trim().is_empty() {
                println!(
                    "rule walks in {} not compared: xtables-monitor lost events ({})",
                    lab.netns(m.host),
                    if complete {
                        errors.trim()
                    } else {
                        "it missed the last marker"
                    }
                );
                return None;
            }
            let lines = std::mem::take(&mut *m.lines.lock().expect("lines"));
            Some((m.host, lines))
        })
        .collect()
}

/// The rules the kernel walked for the first packet from `src`:`sport` to `dst` (a SYN, for
/// TCP) through every hook of the namespace, on its `visit`-th pass there (0 for the first; a
/// routing loop brings it back), as `TABLE: -A CHAIN ...`, leaving out the raw table's TRACE
/// rules. One packet is followed across hooks by its source port and IP ID, which NAT leaves
/// alone until POSTROUTING, after the monitor has printed the packet (a packet looped back
/// through lo by its IP ID alone), and a pass by its TTL;
/// each line belongs to the packet its trace id names.
/// Later packets of the connection, and retransmissions, are left out. Nothing printed is an
/// empty walk.
/// `sport` is `None` for an ICMP echo: the monitor prints no ICMP fields, so its packets are
/// the traced ones without a source port.
pub fn walked(lines: &[String], src: &str, sport: Option<u16>, dst: &str, arrived: bool, visit: usize) -> Vec<String> {
    let field = |line: &str, key: &str| -> Option<String> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .map(str::to_owned)
    };
    let sport_text = sport.map(|p| p.to_string());
    // A pass starts where the packet enters the namespace: PREROUTING for one that came in
    // (printed without an output device), OUTPUT for one sent there.
    let entry = |l: &str| {
        if arrived {
            !l.contains(" OUT=")
        } else {
            !l.contains(" IN=")
        }
    };
    let Some(first) = lines
        .iter()
        .filter(|l| {
            l.starts_with("PACKET:")
                && field(l, "SRC=").as_deref() == Some(src)
                && field(l, "DST=").as_deref() == Some(dst)
                && field(l, "SPORT=") == sport_text
                && !(l.contains(" SYN ") && l.contains(" ACK "))
                && entry(l)
        })
        .nth(visit)
    else {
        return Vec::new();
    };
    let id = field(first, "ID=");
    let ttl = |l: &str| field(l, "TTL=").and_then(|t| t.parse::<u8>().ok()).unwrap_or(0);
    // A forwarded packet is printed with its TTL already lowered from FORWARD on.
    let pass = [ttl(first), ttl(first).saturating_sub(1)];
    // Packets traced at the same time have their lines interleaved; every line carries the
    // trace id of the packet's pass through one hook, which its PACKET line introduces.
    let trace_id = |l: &str| l.split_whitespace().nth(2).map(str::to_owned);
    let mut ours: std::collections::HashMap<String, bool> = std::collections::HashMap::new();
    let mut walk = Vec::new();
    for l in lines {
        let Some(tid) = trace_id(l) else { continue };
        if l.starts_with("PACKET:") {
            // A packet a host sends to itself comes back in through lo after POSTROUTING,
            // where a MASQUERADE may have changed its source port; its IP ID stays.
            let looped = l.contains(" IN=lo ");
            // Its source is the traced one until POSTROUTING rewrites it, after the monitor has
            // printed the packet: another client's packet that happens to share the port, the IP
            // ID and the TTL (a busy lab has many with port 40000 and the same TTL) is not ours.
            let same_source = field(l, "SPORT=") == sport_text && field(l, "SRC=").as_deref() == Some(src);
            let mine = (same_source || looped) && field(l, "ID=") == id && pass.contains(&ttl(l));
            ours.insert(tid, mine);
        } else if ours.get(&tid) == Some(&true)
            && let Some((_, rule)) = l.split_once("  -4 -t ")
        {
            let (table, rule) = rule.split_once(' ').unwrap_or((rule, ""));
            if table != "raw" {
                walk.push(format!("{table}: {rule}"));
                // A packet a rule drops or rejects goes no further: whatever follows is another
                // packet's that matched ours by port, ID and TTL.
                if rule.contains(" -j DROP") || rule.contains(" -j REJECT") {
                    break;
                }
            }
        }
    }
    walk
}
