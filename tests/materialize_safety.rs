//! `k8snet materialize` writes a script that people pipe into `sudo sh`. These tests run the
//! real build and teardown scripts, for every shipped scenario and for hostile file names and
//! long names, under a `PATH` that holds only a logging stand-in for `ip`. Each test asserts that
//! the script ran exactly the commands the compiled state calls for, and nothing else:
//!
//! - every command is `ip`, and every `ip` names a namespace the script itself created (so
//!   nothing touches the root namespace), or is `ip netns add` creating one;
//! - what runs inside a namespace is `sysctl`, `test -e` on a bridge sysctl, `iptables-restore`
//!   or `nft -f -`, fed exactly the rules `explain` shows for that host;
//! - any other command is "not found" on stderr, and the test refuses that;
//! - a hostile scenario path changes no command at all: it only stands, escaped, in a comment;
//! - the teardown script deletes exactly the namespaces the build created.
//!
//! Scenarios with hostile names never get a script: they are refused with exit 2 and nothing on
//! stdout.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use k8snet::input::{self, Source};
use k8snet::net::{Link, NetState};
use k8snet::render::materialize;

const BIN: &str = env!("CARGO_BIN_EXE_k8snet");

/// The stand-in for `ip`: it logs its arguments NUL-separated, led by their count, saves its
/// standard input (the heredoc of an `iptables-restore`), and succeeds.
const IP_SHIM: &str = r#"#!/bin/sh
n=$(/bin/cat "$SHIM_DIR/count" 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" > "$SHIM_DIR/count"
{ printf '%s\0' "$#" ip; for a in "$@"; do printf '%s\0' "$a"; done; } >> "$SHIM_DIR/log"
/bin/cat > "$SHIM_DIR/stdin.$n"
exit 0
"#;

struct Lab {
    dir: PathBuf,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        let dir = std::env::temp_dir().join(format!("k8snet-shim-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        let shim = dir.join("bin/ip");
        std::fs::write(&shim, IP_SHIM).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
        Lab { dir }
    }

    /// Runs `script` with `sh` under the shims; returns each `ip` call with its standard input.
    fn run(&self, script: &str) -> Vec<(Vec<String>, String)> {
        let check = Command::new("sh").arg("-n").arg("-c").arg(script).output().unwrap();
        assert!(
            check.status.success(),
            "sh -n refuses the script: {}",
            utf8(&check.stderr)
        );
        for f in ["log", "count"] {
            let _ = std::fs::remove_file(self.dir.join(f));
        }
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .env_clear()
            .env("PATH", self.dir.join("bin"))
            .env("SHIM_DIR", &self.dir)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "the script failed or ran something else (exit {:?}): {}",
            out.status.code(),
            utf8(&out.stderr)
        );
        let log = std::fs::read(self.dir.join("log")).unwrap_or_default();
        let mut words = log.split(|&b| b == 0).map(|w| String::from_utf8(w.to_vec()).unwrap());
        let mut calls = Vec::new();
        while let Some(count) = words.next().filter(|w| !w.is_empty()) {
            let count: usize = count.parse().unwrap();
            let argv: Vec<String> = words.by_ref().take(count + 1).collect();
            let n = calls.len() + 1;
            let stdin = std::fs::read_to_string(self.dir.join(format!("stdin.{n}"))).unwrap_or_default();
            calls.push((argv, stdin));
        }
        calls
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn utf8(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn state_of(text: &str) -> NetState {
    let source = Source {
        name: "scenario".into(),
        text: text.into(),
    };
    let (spec, diags) = input::parse(&source).unwrap_or_else(|d| panic!("{d:?}"));
    assert!(diags.is_empty(), "{diags:?}");
    let cluster = k8snet::model::build(&spec).unwrap_or_else(|d| panic!("{d:?}")).cluster;
    k8snet::compile::compile(&cluster)
}

/// Every namespace the build must create: one per host, one per layer-2 segment.
fn namespaces(state: &NetState, prefix: &str) -> BTreeSet<String> {
    let mut all: BTreeSet<String> = state
        .hosts
        .iter()
        .map(|h| materialize::netns_name(prefix, &h.name))
        .collect();
    for h in &state.hosts {
        for i in &h.interfaces {
            if let Link::Segment { segment } = &i.link {
                all.insert(materialize::segment_netns_name(prefix, segment));
            }
        }
    }
    all
}

/// Checks the build's calls against the compiled state; returns them for comparison.
fn check_build(state: &NetState, prefix: &str, calls: &[(Vec<String>, String)]) {
    let expected = namespaces(state, prefix);
    let mut made: BTreeSet<String> = BTreeSet::new();
    let mut restored: BTreeSet<String> = BTreeSet::new();
    let mut loaded: BTreeSet<String> = BTreeSet::new();
    for (argv, stdin) in calls {
        let words: Vec<&str> = argv.iter().map(String::as_str).collect();
        assert_eq!(words[0], "ip", "{words:?}");
        match &words[1..] {
            ["netns", "add", ns] => {
                assert!(expected.contains(*ns), "creates a namespace it should not: {ns}");
                assert!(made.insert(ns.to_string()), "creates {ns} twice");
            }
            ["-n", ns, rest @ ..] => {
                assert!(made.contains(*ns), "`ip -n {ns}` before {ns} exists: {words:?}");
                assert!(
                    matches!(rest.first(), Some(&("link" | "addr" | "route")))
                        || is_tunnel_neighbor(state, prefix, ns, rest),
                    "unexpected ip object: {words:?}"
                );
            }
            ["netns", "exec", ns, inner @ ..] => {
                assert!(made.contains(*ns), "`ip netns exec {ns}` before {ns} exists: {words:?}");
                match inner {
                    ["sysctl", "-qw", settings @ ..] => {
                        assert!(!settings.is_empty());
                        for s in settings {
                            assert!(
                                s.starts_with("net.ipv4.")
                                    || s.starts_with("net/ipv4/")
                                    || s.starts_with("net.bridge."),
                                "sets a sysctl outside the namespace's network: {s}"
                            );
                        }
                    }
                    ["test", "-e", "/proc/sys/net/bridge/bridge-nf-call-iptables"] => {}
                    [
                        "bridge",
                        "fdb",
                        "add",
                        mac,
                        "dev",
                        dev,
                        "dst",
                        remote,
                        "self",
                        "permanent",
                    ] => {
                        assert!(
                            vtep_entries(state, prefix, ns, dev)
                                .any(|p| p.mac.to_string() == *mac && p.remote.to_string() == *remote),
                            "an FDB entry the compiled state does not hold: {inner:?} in {ns}"
                        );
                    }
                    ["iptables-restore"] => {
                        let host = state
                            .hosts
                            .iter()
                            .find(|h| materialize::netns_name(prefix, &h.name) == *ns)
                            .expect("rules are loaded into a host's namespace");
                        let mut rules = String::new();
                        for t in [&host.nat, &host.filter] {
                            if t.chains().any(|c| !c.rules.is_empty() || c.policy.is_none()) {
                                rules.push_str(&t.save());
                            }
                        }
                        assert_eq!(
                            stdin, &rules,
                            "the rules loaded into {ns} differ from the compiled ones"
                        );
                        assert!(restored.insert(ns.to_string()), "rules loaded twice into {ns}");
                    }
                    ["nft", "-f", "-"] => {
                        let host = state
                            .hosts
                            .iter()
                            .find(|h| materialize::netns_name(prefix, &h.name) == *ns)
                            .expect("rules are loaded into a host's namespace");
                        let table = host.nftables.as_ref().expect("nft runs only where a table is");
                        let script = k8snet::net::nftables::script_of(table).expect("the table has a script");
                        assert_eq!(
                            stdin, &script,
                            "the nftables table loaded into {ns} differs from the compiled one"
                        );
                        assert!(loaded.insert(ns.to_string()), "nftables table loaded twice into {ns}");
                    }
                    ["ipset", "restore"] => {
                        let host = state
                            .hosts
                            .iter()
                            .find(|h| materialize::netns_name(prefix, &h.name) == *ns)
                            .expect("sets are loaded into a host's namespace");
                        assert_eq!(
                            stdin,
                            &host.ipsets.save(),
                            "the sets loaded into {ns} differ from the compiled ones"
                        );
                        assert!(
                            !restored.contains(*ns),
                            "sets loaded after the rules that match them in {ns}"
                        );
                    }
                    other => panic!("runs {other:?} inside {ns}"),
                }
            }
            other => panic!("an ip command outside the lab's namespaces: {other:?}"),
        }
    }
    assert_eq!(made, expected, "the build must create exactly the state's namespaces");
    let with_table: BTreeSet<String> = state
        .hosts
        .iter()
        .filter(|h| h.nftables.is_some())
        .map(|h| materialize::netns_name(prefix, &h.name))
        .collect();
    assert_eq!(loaded, with_table, "every nftables table is loaded, and nothing else");
    assert!(!restored.is_empty() || state.hosts.iter().all(|h| h.nat.chains().all(|c| c.rules.is_empty())));
}

/// The VXLAN peers of device `dev` in the host whose namespace is `ns`.
fn vtep_entries<'a>(
    state: &'a NetState,
    prefix: &'a str,
    ns: &'a str,
    dev: &'a str,
) -> impl Iterator<Item = &'a k8snet::net::vxlan::VtepPeer> + 'a {
    state
        .hosts
        .iter()
        .filter(move |h| materialize::netns_name(prefix, &h.name) == ns)
        .flat_map(|h| &h.interfaces)
        .filter(move |i| i.name == dev)
        .filter_map(|i| match &i.link {
            Link::Vxlan(v) => Some(v),
            _ => None,
        })
        .flat_map(|v| v.entries())
}

/// `ip -n NS neigh add ADDR lladdr MAC dev DEV nud permanent` for a VXLAN peer the state holds.
fn is_tunnel_neighbor(state: &NetState, prefix: &str, ns: &str, rest: &[&str]) -> bool {
    match rest {
        ["neigh", "add", addr, "lladdr", mac, "dev", dev, "nud", "permanent"] => {
            vtep_entries(state, prefix, ns, dev).any(|p| p.addr.to_string() == *addr && p.mac.to_string() == *mac)
        }
        _ => false,
    }
}

fn check_teardown(state: &NetState, prefix: &str, calls: &[(Vec<String>, String)]) {
    let deleted: Vec<&str> = calls
        .iter()
        .map(
            |(argv, _)| match argv.iter().map(String::as_str).collect::<Vec<_>>()[..] {
                ["ip", "netns", "del", ns] => ns,
                ref other => panic!("teardown runs {other:?}"),
            },
        )
        .collect();
    let unique: BTreeSet<String> = deleted.iter().map(|s| s.to_string()).collect();
    assert_eq!(unique.len(), deleted.len(), "a namespace is deleted twice");
    assert_eq!(unique, namespaces(state, prefix));
}

fn materialize(path: &Path, extra: &[&str], env_path: bool) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("materialize").args(extra).env_remove("K8SNET_SCENARIO");
    if env_path {
        cmd.env("K8SNET_SCENARIO", path);
    } else {
        cmd.arg(path);
    }
    cmd.output().unwrap()
}

/// File names from the probe's categories: command substitution, backticks, quotes, line
/// breaks, `;`, an option, terminal escapes, a carriage return, and a name near the limit.
fn hostile_file_names() -> Vec<String> {
    vec![
        "$(touch pwned).yaml".into(),
        "`touch pwned`.yaml".into(),
        "it's \"quoted\".yaml".into(),
        "x\nreboot\n.yaml".into(),
        "x\r\ntouch pwned\n#.yaml".into(),
        "a; touch pwned; b.yaml".into(),
        "--help".into(),
        "\u{1b}[2J\u{1b}]0;title\u{7}.yaml".into(),
        "${IFS}$(id)\\'.yaml".into(),
        format!("{}.yaml", "n".repeat(240)),
    ]
}

fn scenario_texts() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir("scenarios")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| (p.display().to_string(), std::fs::read_to_string(&p).unwrap()))
        .collect();
    out.sort();
    // The longest names the API allows: a 253-character node and pod name (DNS subdomains) and
    // a 63-character namespace, so namespace names are shortened with a hash.
    let label = |c: char| c.to_string().repeat(63);
    let long = format!("{}.{}.{}.{}", label('a'), label('b'), label('c'), "d".repeat(61));
    assert_eq!(long.len(), 253);
    let demo = std::fs::read_to_string("scenarios/demo.yaml").unwrap();
    let long_names = demo
        .replace("node-1", &long)
        .replace("name: web-1", &format!("name: {}", long.replace('a', "w")))
        .replace("namespace: default ", &format!("namespace: {} ", "n".repeat(63)));
    // The same in nftables mode, with the longest Service and port names too: they make up the
    // chain names, which nft cannot quote.
    let nft_long = long_names
        .replace("kubeProxy: iptables", "kubeProxy: nftables")
        .replace("svc/web", &format!("svc/{}", "s".repeat(63)))
        .replace("  - name: web\n", &format!("  - name: {}\n", "s".repeat(63)))
        .replace("name: http", &format!("name: {}", "p".repeat(15)));
    assert!(nft_long.contains("kubeProxy: nftables") && nft_long.contains(&"s".repeat(63)));
    out.push(("long names".into(), long_names));
    out.push(("long names, nftables".into(), nft_long));
    out
}

#[test]
fn scripts_run_only_the_commands_the_compiled_state_calls_for() {
    let lab = Lab::new("scenarios");
    let path = lab.dir.join("scenario.yaml");
    for (name, text) in scenario_texts() {
        let state = state_of(&text);
        std::fs::write(&path, &text).unwrap();
        for prefix in ["k8snet-", "lab-2-"] {
            let build = materialize(&path, &["--prefix", prefix], false);
            // IPVS mode cannot be built here: refused, with nothing written.
            if state.hosts.iter().any(|h| h.ipvs.is_some()) {
                assert_eq!(build.status.code(), Some(2), "{name}: {}", text_of(&build));
                assert!(build.stdout.is_empty(), "{name}");
                continue;
            }
            assert!(build.status.success(), "{name}: {}", text_of(&build));
            check_build(&state, prefix, &lab.run(&utf8(&build.stdout)));

            let teardown = materialize(&path, &["--prefix", prefix, "--teardown"], false);
            assert!(teardown.status.success(), "{name}: {}", text_of(&teardown));
            check_teardown(&state, prefix, &lab.run(&utf8(&teardown.stdout)));
        }
    }
}

/// A hostile path, given as an argument or in K8SNET_SCENARIO, changes no command: the path
/// is only ever written, escaped, into a comment. (What the script does with the path does not
/// depend on the scenario, so the demo stands for all.)
#[test]
fn a_hostile_scenario_path_changes_no_command() {
    let lab = Lab::new("paths");
    let dir = lab.dir.join("files");
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string("scenarios/demo.yaml").unwrap();
    let state = state_of(&text);
    let plain = dir.join("plain.yaml");
    std::fs::write(&plain, &text).unwrap();
    let baseline = lab.run(&utf8(&materialize(&plain, &[], false).stdout));
    check_build(&state, "k8snet-", &baseline);
    for file in hostile_file_names() {
        let path = dir.join(&file);
        std::fs::write(&path, &text).unwrap();
        for env_path in [false, true] {
            for extra in [&[][..], &["--teardown"][..]] {
                let out = materialize(&path, extra, env_path);
                assert!(out.status.success(), "{file:?}: {}", text_of(&out));
                let script = utf8(&out.stdout);
                assert!(
                    !script.chars().any(|c| c.is_control() && c != '\n'),
                    "{file:?}: a control character reached the script"
                );
                let calls = lab.run(&script);
                if extra.is_empty() {
                    assert_eq!(calls, baseline, "{file:?}: the path changed a command");
                } else {
                    check_teardown(&state, "k8snet-", &calls);
                }
            }
        }
        std::fs::remove_file(&path).unwrap();
    }
    assert!(!Path::new("pwned").exists() && !lab.dir.join("bin/pwned").exists());
}

fn text_of(out: &std::process::Output) -> String {
    format!("exit {:?}: {}", out.status.code(), utf8(&out.stderr))
}

/// Hostile names are refused before any script exists: exit 2, nothing on stdout.
#[test]
fn hostile_names_get_no_script() {
    let demo = std::fs::read_to_string("scenarios/demo.yaml").unwrap();
    let lab = Lab::new("names");
    let cases = [
        ("name: pod-a", "name: \"$(reboot)\""),
        ("name: pod-a", "name: \"pod-a\\nreboot\""),
        ("name: pod-a", "name: \"--help\""),
        ("name: pod-a", "name: \"pod\\e[2J\""),
        ("name: node-1", "name: \"node-1;reboot\""),
        ("name: http", "name: 'x\" -j ACCEPT -m comment --comment \"y'"),
        ("name: http", "name: \"http\\n-A INPUT -j DROP\""),
        ("{app: web}", "{app: \"web`reboot`\"}"),
        ("{app: client}", "{\"app\\nx\": client}"),
        (
            "clusterDomain: cluster.local",
            "clusterDomain: \"cluster.local'; reboot; '\"",
        ),
        ("name: demo", "name: \"demo\\u202e\""),
    ];
    for (from, to) in cases {
        assert!(demo.contains(from), "the demo has no {from:?}");
        let path = lab.dir.join("hostile.yaml");
        std::fs::write(&path, demo.replacen(from, to, 1)).unwrap();
        for extra in [&[][..], &["--teardown"][..]] {
            let out = materialize(&path, extra, false);
            assert_eq!(out.status.code(), Some(2), "{to} was accepted");
            assert!(out.stdout.is_empty(), "{to}: a partial script was written");
            let err = utf8(&out.stderr);
            assert!(err.contains("is not a valid"), "{to}: {err}");
            assert!(
                !err.chars().any(|c| c.is_control() && c != '\n'),
                "{to}: raw control characters in {err:?}"
            );
        }
    }
}
