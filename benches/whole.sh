#!/bin/sh
# Whole-process wall time and peak memory of k8snet's commands on generated clusters, next to
# the parse-only floor (the same file parsed into plain serde structs by a process that does
# nothing else), as a markdown table.
#
#   benches/whole.sh [NODES...]        # default: 50
#   K8SNET_BENCH_TIMEOUT=600 benches/whole.sh 50 500 5000   # stop any command after 600 s
#   K8SNET_BIN=../old/target/release/k8snet benches/whole.sh # another build of k8snet
#
# Each cluster has 30 pods and 2 Services a node (the ratios of Kubernetes' limits) and 1,000
# trace cases for `check`. Needs GNU time at /usr/bin/time.
set -eu
. "$(dirname "$0")/common.sh"
timeout_s=${K8SNET_BENCH_TIMEOUT:-0}

# Runs a command once; prints "WALL RSS_MB", with WALL ">T" when the timeout stopped it (the
# memory is then its peak until it was stopped).
measure() {
    if [ "$timeout_s" -gt 0 ]; then
        set -- timeout "$timeout_s" "$@"
    fi
    status=0
    /usr/bin/time -f '%e %M' -o "$work/time" "$@" >/dev/null 2>"$work/stderr" || status=$?
    tail -n 1 "$work/time" | awk -v stopped="$([ "$status" -eq 124 ] && echo ">$timeout_s")" \
        '{ printf "%s %.0f\n", stopped != "" ? stopped : $1, $2 / 1024 }'
}

echo "| cluster | file | command | wall s | peak RSS MB | time × floor | memory × floor |"
echo "|---|---|---|---|---|---|---|"
for nodes in ${@:-50}; do
    "$k8snet" generate --nodes "$nodes" --traces 1000 >"$work/c.yaml"
    "$k8snet" generate --nodes "$nodes" --traces 1000 --format json >"$work/c.json"
    "$k8snet" generate --nodes "$nodes" --queries 1000 >"$work/q.txt"
    "$k8snet" generate --nodes "$nodes" --kube-proxy ipvs >"$work/ipvs.yaml"
    set -- $("$k8snet" generate --nodes "$nodes" --queries 1)
    from=$1 to=$2
    cluster="$nodes nodes, $((nodes * 30)) pods, $((nodes * 2)) Services"
    for format in yaml json; do
        file="$work/c.$format"
        size=$(wc -c <"$file" | awk '{ printf "%.1f MB", $1 / 1e6 }')
        set -- $(measure "$floor" "$file")
        floor_s=$1 floor_mb=$2
        row() {
            set -- $(measure "$@")
            ratio_s=$(awk -v a="$1" -v b="$floor_s" 'BEGIN { if (a ~ /^[0-9.]+$/ && b > 0) printf "%.1f", a / b; else print "-" }')
            ratio_mb=$(awk -v a="$2" -v b="$floor_mb" 'BEGIN { if (a ~ /^[0-9.]+$/ && b > 0) printf "%.1f", a / b; else print "-" }')
            echo "| $cluster | $format $size | $label | $1 | $2 | $ratio_s | $ratio_mb |"
        }
        label="parse-only floor ($([ "$format" = yaml ] && echo serde-saphyr || echo serde_json))"
        echo "| $cluster | $format $size | $label | $floor_s | $floor_mb | 1.0 | 1.0 |"
        label="trace $from → $to"
        row "$k8snet" trace -f "$file" --from "$from" --to "$to"
        if [ "$format" = json ]; then
            continue
        fi
        label="explain --node node-1"
        row "$k8snet" explain "$file" --node node-1
        label="explain --service ${to#svc/}"
        row "$k8snet" explain "$file" --service "${to#svc/}"
        label="check (1,000 traces)"
        row "$k8snet" check "$file"
        label="trace --batch (1,000 queries)"
        row "$k8snet" trace -f "$file" --batch "$work/q.txt"
        # The same cluster with kube-proxy in IPVS mode: its file differs by one word, so it is
        # set beside the same floor.
        label="ipvs: trace $from → $to"
        row "$k8snet" trace -f "$work/ipvs.yaml" --from "$from" --to "$to"
        label="ipvs: explain --node node-1"
        row "$k8snet" explain "$work/ipvs.yaml" --node node-1
    done
done
