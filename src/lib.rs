//! k8snet explains Kubernetes networking by tracing a packet through a cluster, hop by hop.
//!
//! Data flows one way: [`input`] (YAML) → [`model`] (validated cluster) → [`compile`] (what
//! Linux holds: [`net`]) → simulator → [`trace`] (plain data) → [`render`] (text, JSON).

pub mod app;
pub mod cli;
pub mod compile;
pub mod diagnostic;
pub mod generate;
pub mod input;
pub mod key_index;
pub mod memory;
pub mod model;
pub mod net;
pub mod outcome;
pub mod policy_trace;
pub mod render;
pub mod resolve;
pub mod sim;
pub mod trace;
pub mod tracer;
