//! Everything that turns data into text for people or machines. Nothing else in the crate
//! prints; the binary writes what these functions return.

pub mod check;
pub mod diagnostics;
pub mod explain;
pub mod materialize;
mod overview;
pub mod style;
pub mod trace;
pub mod untrusted;

/// The scenario a report was made from, as JSON reports name it: the file as given (or
/// `<built-in demo>`, `<stdin>`) and the SHA-256 of its text, so a report can be matched to the
/// exact file it came from.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScenarioRef {
    pub name: String,
    pub sha256: String,
}

impl ScenarioRef {
    pub fn of(source: &crate::input::Source) -> ScenarioRef {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(source.text.as_bytes());
        ScenarioRef {
            name: source.name.clone(),
            sha256: data_encoding::HEXLOWER.encode(&digest),
        }
    }
}
