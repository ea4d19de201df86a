//! Times each stage of `k8snet trace` on one file, and the peak memory after each, for profiling.
//!
//! cargo run --release --example stages -- FILE FROM TO

use std::alloc::{GlobalAlloc, Layout};

use mimalloc::MiMalloc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use k8snet::input::{self, Source};
use k8snet::resolve::Query;
use k8snet::sim::netfilter::BranchChoice;

/// Counts the bytes the program holds, which RSS does not show once freed memory is kept by
/// the allocator.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { MiMalloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn rss_mb() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let get = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024)
    };
    format!(
        "held {} MB, rss {} MB, peak {} MB",
        LIVE.load(Ordering::Relaxed) >> 20,
        get("VmRSS:"),
        get("VmHWM:")
    )
}

fn main() {
    k8snet::memory::return_freed_memory_at_once();
    if std::env::var_os("STAGES_SIZES").is_some() {
        use std::mem::size_of;
        eprintln!(
            "Host {} Route {} Interface {} Table {} RouteTable {} Listener {} Pod {}",
            size_of::<k8snet::net::Host>(),
            size_of::<k8snet::net::route::Route>(),
            size_of::<k8snet::net::Interface>(),
            size_of::<k8snet::net::iptables::Table>(),
            size_of::<k8snet::net::route::RouteTable>(),
            size_of::<k8snet::net::Listener>(),
            size_of::<k8snet::model::Pod>(),
        );
    }
    let args: Vec<String> = std::env::args().collect();
    let (path, from, to) = (&args[1], &args[2], &args[3]);
    let t = Instant::now();
    let text = std::fs::read_to_string(path).expect("readable");
    let source = Source {
        name: path.clone(),
        text,
    };
    eprintln!("read      {:>8.3} s  {}", t.elapsed().as_secs_f64(), rss_mb());
    let t = Instant::now();
    let spec = if std::env::var_os("STAGES_MANIFESTS").is_some() {
        // Manifests: the tree and the decoding in one, as the loader does them.
        let inputs = input::sources::Inputs::single(source);
        let parsed = input::manifest::parse(&inputs).unwrap_or_else(|_| panic!("parses"));
        eprintln!("manifests {:>8.3} s  {}", t.elapsed().as_secs_f64(), rss_mb());
        parsed.scenario
    } else {
        let root = input::read_tree(&source).expect("parses");
        eprintln!("tree      {:>8.3} s  {}", t.elapsed().as_secs_f64(), rss_mb());
        let t = Instant::now();
        let mut dec = input::decode::Decoder::default();
        let spec = input::spec::decode(&mut dec, &root);
        drop(root);
        eprintln!("decode    {:>8.3} s  {}", t.elapsed().as_secs_f64(), rss_mb());
        spec
    };
    let t = Instant::now();
    let cluster = k8snet::model::build(&spec)
        .unwrap_or_else(|_| panic!("validates"))
        .cluster;
    drop(spec);
    eprintln!("validate  {:>8.3} s  {}", t.elapsed().as_secs_f64(), rss_mb());
    let t = Instant::now();
    let state = k8snet::compile::compile(&cluster);
    eprintln!("compile   {:>8.3} s  {}", t.elapsed().as_secs_f64(), rss_mb());
    let query = Query::new(from, to);
    for _ in 0..3 {
        let t = Instant::now();
        let trace = k8snet::tracer::trace(&cluster, &state, &query, BranchChoice::default()).expect("traces");
        eprintln!(
            "trace     {:>8.6} s  {} hops  {}",
            t.elapsed().as_secs_f64(),
            trace.hops.len(),
            rss_mb()
        );
    }
}
