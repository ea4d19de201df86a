//! `trace --batch FILE`: many queries, one a line, answered on one load of the scenario.

use std::io::Read;
use std::path::Path;

use clap::Parser;

use super::Request;
use crate::cli::BatchLine;

/// How the batch file is named in messages.
pub fn shown(file: &Path) -> String {
    if file == Path::new("-") {
        "<stdin>".to_owned()
    } else {
        file.display().to_string()
    }
}

/// Reads every query of the file. A line that is not a query stops the run with its line
/// number, before the scenario is even loaded.
pub fn read(file: &Path, namespace: &str) -> Result<Vec<Request>, String> {
    let text = if file == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read the batch from stdin: {e}"))?;
        text
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("cannot read batch {}: {e}", file.display()))?
    };
    let mut requests = vec![];
    for (n, line) in text.lines().enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first().is_none_or(|w| w.starts_with('#')) {
            continue;
        }
        let parsed = BatchLine::try_parse_from(&words)
            .map_err(|e| format!("{}:{}: {}", shown(file), n + 1, clap_message(&e)))?;
        requests.push(Request {
            line: Some(n + 1),
            from: parsed.from,
            to: parsed.to,
            container: parsed.container,
            port: parsed.port,
            protocol: parsed.protocol,
            namespace: parsed.namespace.unwrap_or_else(|| namespace.to_owned()),
            endpoint: parsed.endpoint,
            all_endpoints: parsed.all_endpoints,
            via_node: parsed.via_node,
        });
    }
    if requests.is_empty() {
        return Err(format!("{} holds no query", shown(file)));
    }
    Ok(requests)
}

/// clap's message without its `error: ` prefix and usage block: the line number says where.
fn clap_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let message: Vec<&str> = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let message = message.join(" ");
    message.strip_prefix("error: ").unwrap_or(&message).to_owned()
}
