#!/bin/sh
# Each datapath model at full size: one generated cluster per CNI model and kube-proxy mode,
# whole-process wall time, CPU time and peak memory of a cross-node pod → Service trace and of
# `explain --node`, next to the parse-only floor of the same file, as a markdown table.
#
#   benches/models.sh [NODES]          # default: 5000 (Kubernetes' limits)
#   K8SNET_BENCH_MODELS="calico:iptables cilium:none" benches/models.sh 500
#
# Each cluster has 30 pods and 2 Services a node. The targets (docs/performance.md): a trace at
# most 1.25 × the floor's time and 2 × its memory; explain --node 1.5 × the floor's time.
# Needs GNU time at /usr/bin/time.
set -eu
. "$(dirname "$0")/common.sh"
nodes=${1:-5000}
models=${K8SNET_BENCH_MODELS:-"bridge:iptables bridge:nftables bridge:ipvs flannel-host-gw:iptables flannel-vxlan:iptables calico:iptables cilium:iptables cilium:none"}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

set -- $("$k8snet" generate --nodes "$nodes" --queries 1)
from=$1 to=$2
echo "| model ($nodes nodes) | command | wall s | CPU s | peak RSS MB | wall × floor | CPU × floor | memory × floor |"
echo "|---|---|---|---|---|---|---|---|"
for model in $models; do
    cni=${model%%:*} proxy=${model#*:}
    file="$work/c.yaml"
    "$k8snet" generate --nodes "$nodes" --cni "$cni" --kube-proxy "$proxy" >"$file"
    set -- $(measure "$floor" "$file")
    floor_s=$1 floor_mb=$2 floor_cpu=$3
    echo "| $cni, kube-proxy $proxy | parse-only floor | $1 | $3 | $2 | 1.00 | 1.00 | 1.00 |"
    row() {
        set -- $(measure "$@")
        echo "| $cni, kube-proxy $proxy | $label | $1 | $3 | $2 | $(ratio "$1" "$floor_s") | $(ratio "$3" "$floor_cpu") | $(ratio "$2" "$floor_mb") |"
    }
    label="trace $from → $to"
    row "$k8snet" trace -f "$file" --from "$from" --to "$to"
    label="explain --node node-1"
    row "$k8snet" explain "$file" --node node-1
done
