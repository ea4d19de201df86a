//! The shell completions and the manual page are generated from the command-line definitions;
//! these tests check that what is generated is what the shells and `man` read: bash parses the
//! bash script (`bash -n`), groff formats every page without a warning, and each names every
//! subcommand. Every `--help` ends with examples. With `K8SNET_REPORT_TESTS=1` (as `.ci/run`
//! sets) a missing groff fails the test; otherwise it is skipped with a message.

use std::io::Write;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_k8snet");

const SUBCOMMANDS: &[&str] = &[
    "explain",
    "check",
    "materialize",
    "trace",
    "generate",
    "completions",
    "man",
];

fn run(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().expect("the binary runs");
    assert!(
        out.status.success(),
        "k8snet {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// Runs `program args` with `input` on stdin: its exit status and stderr.
fn feed(program: &str, args: &[&str], input: &str) -> Option<(bool, String)> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(input.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    Some((out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned()))
}

#[test]
fn every_shell_gets_a_script_naming_every_subcommand() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let script = run(&["completions", shell]);
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "the {shell} completion does not offer {sub}");
        }
    }
    // Flags of a subcommand, and the values of an enum flag, are completed too.
    let bash = run(&["completions", "bash"]);
    assert!(bash.contains("--all-endpoints") && bash.contains("mermaid"));
}

#[test]
fn bash_parses_the_bash_completion() {
    let script = run(&["completions", "bash"]);
    let (ok, err) = feed("bash", &["-n"], &script).expect("bash runs");
    assert!(ok, "bash -n: {err}");
    // bash -n can fail: a script with a syntax error is refused.
    let (ok, _) = feed("bash", &["-n"], &format!("{script}\n_k8snet() {{")).expect("bash runs");
    assert!(!ok, "bash -n accepted a broken script");
}

#[test]
fn an_unknown_shell_is_refused() {
    let out = Command::new(BIN).args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

fn groff() -> bool {
    let found = Command::new("groff").arg("--version").output().is_ok();
    if !found {
        assert!(
            std::env::var("K8SNET_REPORT_TESTS").as_deref() != Ok("1"),
            "groff is missing (Debian package groff-base)"
        );
        eprintln!("skipped: groff is not installed (Debian package groff-base)");
    }
    found
}

/// The page formatted as `man` would (UTF-8 input through preconv, `-k`), with every groff
/// warning on: the text, or the warnings.
fn format(page: &str) -> Result<String, String> {
    let mut child = Command::new("groff")
        .args(["-k", "-man", "-Tutf8", "-ww", "-P-c", "-P-b", "-P-u"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("groff runs");
    child.stdin.take().unwrap().write_all(page.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() && err.trim().is_empty() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(err)
    }
}

#[test]
fn the_manual_formats_cleanly_and_covers_every_subcommand() {
    if !groff() {
        return;
    }
    let overview = format(&run(&["man"])).unwrap_or_else(|e| panic!("k8snet(1): {e}"));
    assert!(overview.contains("SUBCOMMANDS"));
    for sub in SUBCOMMANDS {
        assert!(
            overview.contains(&format!("k8snet-{sub}(1)")),
            "k8snet(1) does not list {sub}"
        );
        let page = format(&run(&["man", sub])).unwrap_or_else(|e| panic!("k8snet-{sub}(1): {e}"));
        assert!(page.contains(&format!("k8snet-{sub}")), "k8snet-{sub}(1) has no name");
        assert!(page.contains("Examples:"), "k8snet-{sub}(1) has no examples");
    }
    // groff can fail: a page with an unknown request warns.
    assert!(format(".TH X 1\n.nosuchrequest\n").is_err());
    let out = Command::new(BIN).args(["man", "nosuch"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn every_help_ends_with_examples() {
    let top = run(&["--help"]);
    assert!(top.contains("Examples:"), "k8snet --help has no examples");
    for sub in SUBCOMMANDS {
        for flag in ["-h", "--help"] {
            let help = run(&[sub, flag]);
            let examples = help
                .split("Examples:")
                .nth(1)
                .unwrap_or_else(|| panic!("k8snet {sub} {flag}: no Examples"));
            assert!(
                examples.contains(&format!("k8snet {sub}")),
                "k8snet {sub} {flag}: the examples do not run {sub}"
            );
        }
    }
}
