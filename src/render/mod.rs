//! Everything that turns data into text for people or machines. Nothing else in the crate
//! prints; the binary writes what these functions return.

pub mod check;
pub mod diagnostics;
pub mod explain;
mod explain_cni;
pub mod explain_data;
mod explain_data_policy;
mod explain_ipvs;
mod explain_nft;
mod explain_policy;
mod explain_service;
pub mod import;
mod import_policy;
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
    /// For Kubernetes manifests: what k8snet assumed, and what it skipped, by kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifests: Option<crate::input::manifest::Report>,
}

impl ScenarioRef {
    pub fn of(source: &crate::input::Source) -> ScenarioRef {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(source.text.as_bytes());
        ScenarioRef {
            name: source.name.clone(),
            sha256: data_encoding::HEXLOWER.encode(&digest),
            manifests: None,
        }
    }
}

/// A report as YAML: the same document as its JSON, key for key and in the same order, so one
/// schema describes both. serde-saphyr (already the parser) writes it; it quotes every string
/// that would otherwise read back as another type (`"80"`, `"no"`, `"null"`). Strings stay on
/// one line, as in the JSON, so a line of the output can be found with grep.
pub fn yaml<T: serde::Serialize>(document: &T) -> String {
    let options = serde_saphyr::ser_options! { prefer_block_scalars: false };
    match serde_saphyr::to_string_with_options(document, options) {
        Ok(text) if text.ends_with('\n') => text,
        Ok(text) => text + "\n",
        Err(e) => format!("error: {e}\n"),
    }
}
