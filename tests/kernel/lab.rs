//! A scenario built for real: the namespaces `k8snet materialize` makes, the processes run in
//! them, and a guard that removes every namespace with the lab's prefix when the lab goes away,
//! whether the test passed or panicked.

use std::net::SocketAddrV4;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use k8snet::net::{NetState, Protocol};
use k8snet::render::materialize;

/// Whether the kernel tests run here, and if not, why.
pub enum Gate {
    Run,
    Skip(String),
}

const HOW: &str = "run them as root with `sudo env \"PATH=$PATH\" K8SNET_KERNEL_TESTS=1 cargo test --test kernel`";

/// The programs the harness runs: the materialized script's own (`ip`, `sysctl`,
/// `iptables-restore`, `nft`) and the probes' and monitors'.
const TOOLS: &[&str] = &[
    "sh",
    "ip",
    "sysctl",
    "iptables",
    "iptables-restore",
    "iptables-save",
    "nft",
    "ipset",
    "conntrack",
    "socat",
    "ping",
    "timeout",
    "ss",
    "kill",
    "xtables-monitor",
    "stdbuf",
];

/// With `K8SNET_KERNEL_TESTS=1` a missing prerequisite fails the test; otherwise the tests run
/// when they can (as root, with every tool present) and skip with a message when they cannot.
pub fn gate() -> Gate {
    let forced = std::env::var("K8SNET_KERNEL_TESTS").is_ok_and(|v| v == "1");
    let mut missing: Vec<String> = TOOLS
        .iter()
        .filter(|t| !on_path(t))
        .map(|t| format!("`{t}` is not on PATH"))
        .collect();
    if !is_root() {
        missing.insert(0, "not running as root".into());
    }
    match (missing.is_empty(), forced) {
        (true, _) => {
            remove_stale_labs();
            Gate::Run
        }
        (false, true) => panic!(
            "K8SNET_KERNEL_TESTS=1, but the kernel tests cannot run: {}",
            missing.join("; ")
        ),
        (false, false) => Gate::Skip(format!("kernel tests skipped ({}): {HOW}", missing.join("; "))),
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

fn on_path(tool: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| Path::new(&dir).join(tool).is_file())
}

/// Removes the labs of test runs that were killed before their guards could run: namespaces
/// named like [`unique_prefix`] makes them, whose process is gone.
pub fn remove_stale_labs() {
    for ns in namespaces_with("kt") {
        let pid = ns[2..].split('-').next().unwrap_or_default();
        let ours = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) && ns[2 + pid.len()..].starts_with('-');
        if ours && !Path::new("/proc").join(pid).exists() {
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        }
    }
}

/// A prefix no other lab of any process uses: the process id and a counter.
pub fn unique_prefix() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("kt{}-{}-", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

pub struct Lab {
    pub prefix: String,
    pub state: NetState,
    listeners: Vec<Child>,
}

impl Lab {
    /// Builds `state` with the script `k8snet materialize` writes for it.
    pub fn build(state: NetState) -> Lab {
        let lab = Lab {
            prefix: unique_prefix(),
            state,
            listeners: Vec::new(),
        };
        let script = materialize::build(&lab.state, &lab.prefix, "a kernel test").expect("the state materializes");
        let out = run_with_input(&mut Command::new("sh"), &script);
        assert!(
            out.status.success(),
            "the materialize script failed under {}:\n{}",
            lab.prefix,
            String::from_utf8_lossy(&out.stderr)
        );
        lab
    }

    pub fn netns(&self, host: usize) -> String {
        materialize::netns_name(&self.prefix, &self.state.hosts[host].name)
    }

    /// `ip netns exec NS PROGRAM ARGS...`
    pub fn exec(&self, host: usize, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.netns(host)]).args(args);
        c
    }

    /// `ip -n NS ARGS...`, run to completion.
    pub fn ip(&self, host: usize, args: &[&str]) -> Output {
        let ns = self.netns(host);
        let mut c = Command::new("ip");
        c.args(["-n", &ns]).args(args);
        output(c)
    }

    /// Starts a listener for every socket the state says is open. Each answers a connection
    /// with one line: its host's name, the address it was reached at and the peer it saw.
    pub fn start_listeners(&mut self, seconds: u32) {
        let mut waiting: Vec<(usize, u16, Protocol)> = Vec::new();
        for (h, host) in self.state.hosts.iter().enumerate() {
            for l in &host.listeners {
                // SCTP needs a kernel module the tests do not load; its flows are checked by
                // route only.
                if l.protocol == Protocol::Sctp || waiting.contains(&(h, l.port, l.protocol)) {
                    continue;
                }
                // A UDP listener learns the address it was reached at from IP_PKTINFO, and reads
                // the datagram before answering: a shell that exits first makes socat's write of
                // the datagram fail, and the answer is lost with it.
                let (address, answer) = match l.protocol {
                    Protocol::Udp => (
                        format!("UDP-RECVFROM:{},fork,ip-pktinfo", l.port),
                        "SYSTEM:read -r x; echo $K8SNET_WHO $SOCAT_IP_DSTADDR $K8SNET_PORT $SOCAT_PEERADDR $SOCAT_PEERPORT",
                    ),
                    _ => (
                        format!("TCP-LISTEN:{},fork,reuseaddr", l.port),
                        "SYSTEM:echo $K8SNET_WHO $SOCAT_SOCKADDR $SOCAT_SOCKPORT $SOCAT_PEERADDR $SOCAT_PEERPORT",
                    ),
                };
                let child = self
                    .exec(h, &["timeout", &seconds.to_string(), "socat", &address, answer])
                    .env("K8SNET_PORT", l.port.to_string())
                    .env("K8SNET_WHO", &host.name)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("socat starts");
                self.listeners.push(child);
                waiting.push((h, l.port, l.protocol));
            }
        }
        // Wait until every socket is bound, so a probe never races its listener.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !waiting.is_empty() {
            let hosts: Vec<usize> = waiting.iter().map(|w| w.0).collect();
            for h in hosts {
                let out = output(self.exec(h, &["ss", "-Hlntu"]));
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                waiting.retain(|&(wh, port, protocol)| wh != h || !bound(&text, port, protocol));
            }
            assert!(Instant::now() < deadline, "listeners did not start: {waiting:?}");
            if !waiting.is_empty() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Starts one connection attempt from `host`, from `src`'s port, to `dst`. The socket is
    /// bound to the port only: the kernel picks the source address, so an answer that saw the
    /// source the trace claims confirms the trace's source address selection too.
    pub fn probe(&self, host: usize, protocol: Protocol, src: SocketAddrV4, dst: SocketAddrV4) -> Child {
        if protocol == Protocol::Icmp {
            // The client's port serves as the echo identifier, as the trace's does.
            let (id, from, to) = (src.port().to_string(), src.ip().to_string(), dst.ip().to_string());
            return self
                .exec(
                    host,
                    &["timeout", "6", "ping", "-n", "-c1", "-W2", "-e", &id, "-I", &from, &to],
                )
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("ping starts");
        }
        let bind = format!("sourceport={}", src.port());
        let args: Vec<String> = match protocol {
            Protocol::Udp => vec![
                "-T3".into(),
                "-t3".into(),
                "-".into(),
                format!("UDP:{}:{},{bind}", dst.ip(), dst.port()),
            ],
            _ => vec![
                "-T2".into(),
                "-u".into(),
                format!("TCP:{}:{},connect-timeout=1.5,{bind}", dst.ip(), dst.port()),
                "-".into(),
            ],
        };
        let mut all: Vec<&str> = vec!["timeout", "6", "socat"];
        all.extend(args.iter().map(String::as_str));
        let mut child = self
            .exec(host, &all)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("socat starts");
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            let _ = stdin.write_all(b"hello\n");
        }
        child
    }
}

fn bound(ss: &str, port: u16, protocol: Protocol) -> bool {
    let proto = match protocol {
        Protocol::Udp => "udp",
        _ => "tcp",
    };
    ss.lines().any(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        cols.first() == Some(&proto) && cols.get(4).is_some_and(|a| a.ends_with(&format!(":{port}")))
    })
}

impl Drop for Lab {
    fn drop(&mut self) {
        for l in &mut self.listeners {
            // SIGTERM, which `timeout` passes on to socat; SIGKILL would orphan socat.
            let _ = Command::new("kill").arg(l.id().to_string()).status();
        }
        for l in &mut self.listeners {
            let _ = l.wait();
        }
        remove_namespaces(&self.prefix);
    }
}

/// Deletes every namespace whose name starts with `prefix`.
pub fn remove_namespaces(prefix: &str) {
    for ns in namespaces_with(prefix) {
        let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    }
}

pub fn namespaces_with(prefix: &str) -> Vec<String> {
    let out = output({
        let mut c = Command::new("ip");
        c.args(["netns", "list"]);
        c
    });
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

pub fn output(mut c: Command) -> Output {
    c.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {c:?}: {e}"))
}

pub fn run_with_input(c: &mut Command, input: &str) -> Output {
    use std::io::Write;
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {c:?}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .expect("the script is written");
    child.wait_with_output().expect("the script finishes")
}
