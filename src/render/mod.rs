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
