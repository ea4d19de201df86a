#!/bin/sh
# Loading a kubectl JSON dump (`k8snet generate --format kubectl-json`, a v1 List of Nodes,
# Pods, Services and EndpointSlices with managedFields, annotations and status) next to the
# parse-only floor (serde_json into plain structs of the fields k8snet reads, in a process
# that does nothing else): whole-process wall time and peak memory, as a markdown table.
#
#   benches/manifests.sh [NODES...]    # default: 5000 (Kubernetes' limits: 150,000 pods, about 1 GB)
#
# Each cluster has 30 pods and 2 Services a node. Needs GNU time at /usr/bin/time.
set -eu
. "$(dirname "$0")/common.sh"

echo "| cluster | file | command | wall s | CPU s | peak RSS MB | wall × floor | CPU × floor | memory × floor |"
echo "|---|---|---|---|---|---|---|---|---|"
for nodes in ${@:-5000}; do
    file="$work/dump.json"
    "$k8snet" generate --nodes "$nodes" --format kubectl-json >"$file"
    set -- $("$k8snet" generate --nodes "$nodes" --queries 1)
    from=$1 to=$2
    cluster="$nodes nodes, $((nodes * 30)) pods, $((nodes * 2)) Services"
    size=$(wc -c <"$file" | awk '{ printf "%.2f GB", $1 / 1e9 }')
    set -- $(measure "$floor" "$file")
    floor_s=$1 floor_mb=$2 floor_cpu=$3
    echo "| $cluster | kubectl JSON $size | parse-only floor (serde_json) | $floor_s | $floor_cpu | $floor_mb | 1.0 | 1.0 | 1.0 |"
    row() {
        set -- $(measure "$@")
        ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
        echo "| $cluster | kubectl JSON $size | $label | $1 | $3 | $2 | $(ratio "$1" "$floor_s") | $(ratio "$3" "$floor_cpu") | $(ratio "$2" "$floor_mb") |"
    }
    label="trace $from → $to"
    row "$k8snet" trace -f "$file" --from "$from" --to "$to"
    label="explain --node node-1"
    row "$k8snet" explain "$file" --node node-1
done
