# Sourced by the whole-process benchmarks (manifests.sh, models.sh): builds the release binary
# and the floor, makes a work directory removed on exit, and defines `measure`.
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin k8snet --example parse_floor
# K8SNET_BIN measures another build (an earlier commit's) on the same files.
k8snet=${K8SNET_BIN:-target/release/k8snet}
floor=target/release/examples/parse_floor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trap 'rm -rf "$work"; exit 1' INT TERM

# Runs a command once; prints "WALL RSS_MB CPU" (CPU: user and system seconds, which a busy
# machine stretches less than the wall time).
measure() {
    /usr/bin/time -f '%e %M %U %S' -o "$work/time" "$@" >/dev/null 2>"$work/stderr" || {
        echo "failed: $*" >&2
        cat "$work/stderr" >&2
        exit 1
    }
    tail -n 1 "$work/time" | awk '{ printf "%s %.0f %.2f\n", $1, $2 / 1024, $3 + $4 }'
}
