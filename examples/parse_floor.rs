//! The parse-only floor as a process of its own, for `benches/whole.sh`: reads a scenario
//! (`.json` with serde_json, anything else with serde-saphyr) into plain serde structs and
//! prints how many nodes, pods and Services it read. A kubectl JSON dump (a `"kind": "List"`)
//! is read into plain structs of the fields k8snet reads, and its objects are counted by kind.
//!
//! cargo run --release --example parse_floor -- FILE

// The same allocator as k8snet itself, so the ratio to the floor measures k8snet's work, not
// a difference in allocators.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../benches/floor/kubectl.rs"]
mod kubectl;
#[path = "../benches/floor/mirror.rs"]
mod mirror;

fn main() -> std::process::ExitCode {
    k8snet::memory::return_freed_memory_at_once();
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: parse_floor FILE");
        return std::process::ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if path.ends_with(".json")
        && text
            .trim_start()
            .strip_prefix('{')
            .is_some_and(|r| r.trim_start().starts_with("\"apiVersion\""))
    {
        return match kubectl::from_json(&text) {
            Ok(list) => {
                let mut kinds = std::collections::BTreeMap::new();
                for item in &list.items {
                    *kinds.entry(item.kind.as_str()).or_insert(0usize) += 1;
                }
                println!("{kinds:?}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{path}: {e}");
                std::process::ExitCode::from(2)
            }
        };
    }
    let parsed = if path.ends_with(".json") {
        mirror::from_json(&text)
    } else {
        mirror::from_yaml(&text)
    };
    match parsed {
        Ok(s) => {
            println!(
                "{} nodes, {} pods, {} Services, {} traces",
                s.nodes.len(),
                s.pods.len(),
                s.services.len(),
                s.traces.len()
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
