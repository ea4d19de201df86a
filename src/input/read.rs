//! Reading a scenario file's bytes: at most the input limit, and only UTF-8 text.
//!
//! The limit is checked while reading (at most limit + 1 bytes are read), so `/dev/zero`, a
//! FIFO or an endless pipe is refused as soon as it passes the limit, not when memory runs out.

use std::io::Read;
use std::path::Path;

use super::Source;
use super::tree::Pos;
use crate::diagnostic::{Diagnostic, Span, thousands};

/// The default input limit: 2 GiB. A `kubectl get -o json` dump of a cluster at Kubernetes'
/// limits (5,000 nodes, 150,000 pods) is about 1 GB; twice that leaves room while still
/// stopping a runaway input long before it exhausts a machine's memory.
pub const DEFAULT_MAX_INPUT: u64 = 2 << 30;

pub enum ReadError {
    /// The file could not be opened or read.
    Io(std::io::Error),
    /// The file was read and refused; the source holds what was read, for the snippet.
    Refused(Box<(Source, Diagnostic)>),
}

/// Reads `path` whole, refusing more than `max` bytes and text that is not UTF-8.
pub fn file(path: &Path, max: u64) -> Result<Source, ReadError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(ReadError::Io)?;
    // Room for the whole file at once: growing a 1 GB buffer by doubling copies it twice over.
    let expected = file.metadata().map_or(0, |m| m.len().min(max.saturating_add(1)));
    let mut bytes = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > max {
        let source = Source {
            name,
            text: String::new(),
        };
        let d = Diagnostic::error(format!("the scenario is larger than the input limit of {}", size(max))).help(
            "a scenario of the largest cluster Kubernetes supports is far smaller; if this file is meant to be read, raise the limit with --max-input-size (for example --max-input-size 4GiB)",
        );
        return Err(ReadError::Refused(Box::new((source, d))));
    }
    text(name, bytes)
}

/// `text` with each carriage return that stands alone (an old Mac line break) made a line feed.
/// YAML counts such a return as a line break, and the messages that quote the file find lines by
/// their line feeds, so without this every error in such a file would point at its first line.
/// A CR LF pair stays as it is.
fn line_feeds(text: String) -> String {
    let bytes = text.as_bytes();
    let lone = |i: usize| bytes[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n');
    // Most files hold no carriage return at all, which a byte search says quickly.
    if memchr::memchr(b'\r', bytes).is_none() || !(0..bytes.len()).any(lone) {
        return text;
    }
    let mut out = text.into_bytes();
    for i in 0..out.len() {
        if out[i] == b'\r' && out.get(i + 1) != Some(&b'\n') {
            out[i] = b'\n';
        }
    }
    // Only ASCII bytes were replaced by ASCII bytes, so the text is still UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// The bytes as text, or where the first byte that is not UTF-8 is.
pub fn text(name: String, bytes: Vec<u8>) -> Result<Source, ReadError> {
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Source {
            name,
            text: line_feeds(text),
        }),
        Err(e) => {
            let bytes = e.as_bytes();
            let offset = e.utf8_error().valid_up_to();
            let valid = &bytes[..offset];
            let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let pos = Pos {
                line: 1 + valid.iter().filter(|&&b| b == b'\n').count() as u64,
                column: 1 + String::from_utf8_lossy(&valid[line_start..]).chars().count() as u64,
            };
            let d = Diagnostic::error(format!(
                "the file is not UTF-8 text: byte 0x{:02x} at byte offset {} (line {}) is not valid UTF-8",
                bytes[offset],
                thousands(offset),
                pos.line
            ))
            .at(Span { pos, len: 1 })
            .label("not UTF-8")
            .help("save the file as UTF-8 (comments too: every byte of the file is read as UTF-8)");
            let text = String::from_utf8_lossy(bytes).into_owned();
            Err(ReadError::Refused(Box::new((Source { name, text }, d))))
        }
    }
}

/// A size as a person reads it: "2 GiB (2,147,483,648 bytes)".
pub fn size(bytes: u64) -> String {
    let units = [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    match units
        .iter()
        .find(|(_, unit)| bytes >= *unit && bytes.is_multiple_of(*unit))
    {
        Some((name, unit)) => format!("{} {name} ({} bytes)", bytes / unit, thousands(bytes as usize)),
        None => format!("{} bytes", thousands(bytes as usize)),
    }
}

/// Reads a size as written on the command line: a number of bytes, optionally followed by a
/// unit (`KiB`, `MiB`, `GiB`, `TiB`, or `KB`, `MB`, `GB`, `TB` for powers of 1,000).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().map_err(|_| {
        format!("`{text}` is not a size: write a number of bytes, or one with a unit such as 512MiB or 2GiB")
    })?;
    let multiplier: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        other => {
            return Err(format!(
                "`{other}` is not a size unit: use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB"
            ));
        }
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("`{text}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_with_and_without_units() {
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("2GiB"), Ok(DEFAULT_MAX_INPUT));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("512 MiB"), Ok(512 << 20));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("2PB").is_err());
        assert!(parse_size("99999999999TiB").is_err());
    }

    #[test]
    fn sizes_are_shown_in_their_unit() {
        assert_eq!(size(DEFAULT_MAX_INPUT), "2 GiB (2,147,483,648 bytes)");
        assert_eq!(size(1000), "1,000 bytes");
    }

    #[test]
    fn bad_utf8_names_its_line_and_offset() {
        let Err(ReadError::Refused(refused)) = text("f".into(), b"a: 1\n# caf\xe9\n".to_vec()) else {
            panic!("accepted")
        };
        let (source, d) = *refused;
        assert!(
            d.message.contains("byte 0xe9 at byte offset 10 (line 2)"),
            "{}",
            d.message
        );
        assert_eq!(d.at.unwrap().pos, Pos { line: 2, column: 6 });
        assert!(source.text.contains("caf\u{fffd}"));
    }

    #[test]
    fn limit_holds_on_both_sides() {
        let dir = std::env::temp_dir().join(format!("k8snet-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ten.yaml");
        std::fs::write(&path, "0123456789").unwrap();
        assert!(file(&path, 10).is_ok());
        let Err(ReadError::Refused(refused)) = file(&path, 9) else {
            panic!("accepted")
        };
        let d = &refused.1;
        assert!(d.message.contains("input limit of 9 bytes"), "{}", d.message);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_endless_input_is_cut_at_the_limit() {
        let Err(ReadError::Refused(_)) = file(Path::new("/dev/zero"), 1 << 20) else {
            panic!("accepted")
        };
    }
}
