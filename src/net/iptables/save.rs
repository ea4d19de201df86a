//! Rules as `iptables-save` writes them: matches, targets, probabilities and comments.

use std::fmt;

use super::{CtState, Match, RecentCheck, Target};

/// The probability kube-proxy asks for, as the kernel stores it (a fraction of 2^31).
pub fn stored_probability(p: f64) -> u32 {
    // kube-proxy writes the probability with ten decimals; iptables then rounds it to 2^-31 steps.
    let written: f64 = format!("{p:.10}").parse().unwrap_or(p);
    (written * 2f64.powi(31)).round() as u32
}

pub fn probability_of(stored: u32) -> f64 {
    stored as f64 / 2f64.powi(31)
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let not = |negated: &bool| if *negated { "! " } else { "" };
        match self {
            Match::Source { net, negated } => write!(f, "{}-s {net}", not(negated)),
            Match::Destination { net, negated } => write!(f, "{}-d {net}", not(negated)),
            Match::InInterface { name, negated } => write!(f, "{}-i {name}", not(negated)),
            Match::OutInterface { name, negated } => write!(f, "{}-o {name}", not(negated)),
            Match::Protocol(p) => write!(f, "-p {}", p.lower()),
            Match::Comment(c) => write!(f, "-m comment --comment {}", save_string(c)),
            Match::DestinationPort { protocol, port } => {
                write!(f, "-m {}", protocol.lower())?;
                match port {
                    Some(port) => write!(f, " --dport {port}"),
                    None => Ok(()),
                }
            }
            Match::AddrTypeLocal { destination, negated } => write!(
                f,
                "-m addrtype {}--{}-type LOCAL",
                not(negated),
                if *destination { "dst" } else { "src" }
            ),
            Match::Mark { value, mask, negated } => write!(f, "-m mark {}--mark {value:#x}/{mask:#x}", not(negated)),
            Match::Statistic { stored } => write!(
                f,
                "-m statistic --mode random --probability {:.11}",
                probability_of(*stored)
            ),
            Match::Recent { name, check } => match check {
                RecentCheck::Rcheck { seconds } => write!(
                    f,
                    "-m recent --rcheck --seconds {seconds} --reap --name {name} --mask 255.255.255.255 --rsource"
                ),
                RecentCheck::Set => write!(f, "-m recent --set --name {name} --mask 255.255.255.255 --rsource"),
            },
            Match::Conntrack { states, negated } => {
                let names: Vec<&str> = states
                    .iter()
                    .map(|s| match s {
                        CtState::New => "NEW",
                        CtState::Established => "ESTABLISHED",
                        CtState::Related => "RELATED",
                        CtState::Invalid => "INVALID",
                        CtState::Dnat => "DNAT",
                    })
                    .collect();
                write!(f, "-m conntrack {}--ctstate {}", not(negated), names.join(","))
            }
            Match::Set { name, source, negated } => write!(
                f,
                "-m set {}--match-set {name} {}",
                not(negated),
                if *source { "src" } else { "dst" }
            ),
            Match::PhysdevIsBridged => f.write_str("-m physdev --physdev-is-bridged"),
            Match::DestinationPortRange { protocol, first, last } => {
                write!(f, "-m {} --dport {first}:{last}", protocol.lower())
            }
            Match::Multiport { first, last } => write!(f, "-m multiport --dports {first}:{last}"),
            Match::IcmpType(t) => write!(f, "-m icmp --icmp-type {t}"),
            Match::Limit { per_minute, burst } => write!(f, "-m limit --limit {per_minute}/min --limit-burst {burst}"),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Target::Jump(chain) => write!(f, "-j {chain}"),
            Target::Accept => f.write_str("-j ACCEPT"),
            Target::Drop => f.write_str("-j DROP"),
            Target::Return => f.write_str("-j RETURN"),
            Target::Reject => f.write_str("-j REJECT --reject-with icmp-port-unreachable"),
            Target::Dnat(to) => write!(f, "-j DNAT --to-destination {to}"),
            Target::Masquerade { random_fully } => {
                f.write_str("-j MASQUERADE")?;
                if *random_fully {
                    f.write_str(" --random-fully")?;
                }
                Ok(())
            }
            Target::SetXMark { value, mask } => write!(f, "-j MARK --set-xmark {value:#x}/{mask:#x}"),
            Target::Nflog { group } => write!(f, "-j NFLOG --nflog-group {group}"),
            Target::None => Ok(()),
        }
    }
}

/// The kernel keeps at most this many bytes of a comment (`XT_MAX_COMMENT_LEN`, 256 with the
/// terminating NUL); `iptables-restore` refuses a longer one.
pub const MAX_COMMENT: usize = 255;

/// A comment as `iptables-save` writes it and `iptables-restore` reads it back as one word:
/// in double quotes, with `"` and `\` escaped by a backslash. A line break would end the rule
/// and any control character would reach a terminal that shows the rules, so each becomes a
/// space (validation has refused names that hold one; this keeps the rule whole regardless). A
/// comment too long for the kernel is cut at a character boundary.
pub fn save_string(text: &str) -> String {
    let mut end = text.len().min(MAX_COMMENT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = String::with_capacity(end + 2);
    out.push('"');
    for c in text[..end].chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
