//! Ports as the command line writes them after a name (`svc/web:80`, `svc/web:http`,
//! `node/node-1:30080`) or in `--port`, by the same rules as the scenario file.

use super::{Error, Query};

/// A port written after a name: a number, or a port's name (`svc/web:http`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PortSpec<'a> {
    Number(u16),
    Name(&'a str),
}

/// `NAME`, `NAME:PORT` or `NAME:PORTNAME`.
pub(super) fn split_port_spec(text: &str) -> Result<(&str, Option<PortSpec<'_>>), Error> {
    match text.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && !port.bytes().all(|b| b.is_ascii_digit()) => {
            Ok((name, Some(PortSpec::Name(port))))
        }
        Some((name, port)) => Ok((name, Some(PortSpec::Number(parse_port(port)?)))),
        None => Ok((text, None)),
    }
}

/// The query with the port written after the name, unless `--port` gave one.
pub(super) fn with_port<'a>(q: &Query<'a>, port: Option<PortSpec<'a>>) -> Query<'a> {
    if q.port.is_some() || q.port_name.is_some() {
        return Query { ..*q };
    }
    match port {
        Some(PortSpec::Number(n)) => Query { port: Some(n), ..*q },
        Some(PortSpec::Name(n)) => Query {
            port_name: Some(n),
            ..*q
        },
        None => Query { ..*q },
    }
}

pub(super) fn split_port(text: &str) -> Result<(&str, Option<u16>), Error> {
    match text.rsplit_once(':') {
        Some((name, port)) => Ok((name, Some(parse_port(port)?))),
        None => Ok((text, None)),
    }
}

/// A port as a scenario file writes one: a whole number from 1 to 65535, without a leading
/// zero (`08080` is refused, as `010.0.0.1` is, since some tools read it as octal).
pub fn parse_port(text: &str) -> Result<u16, Error> {
    let shown = crate::diagnostic::shorten(text);
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{shown}` is not a port: write a number from 1 to 65535"));
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err(format!(
            "port `{shown}` has a leading zero: write {}",
            text.trim_start_matches('0')
        ));
    }
    match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(format!(
            "port {shown} is out of range: a port is a number from 1 to 65535"
        )),
    }
}

/// An IPv6 address (bare, in brackets, or with a port) is refused with what is missing, rather
/// than taken for a DNS name.
pub fn refuse_ipv6(text: &str) -> Result<(), Error> {
    let host = text.strip_prefix('[').and_then(|t| t.split(']').next()).unwrap_or(text);
    if host.contains(':') && host.parse::<std::net::Ipv6Addr>().is_ok() {
        return Err(format!(
            "`{}` is an IPv6 address: IPv6 is not supported yet; k8snet models IPv4 clusters only",
            crate::diagnostic::shorten(text)
        ));
    }
    Ok(())
}
