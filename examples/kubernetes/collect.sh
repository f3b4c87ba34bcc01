#!/bin/bash
# After `kubectl apply -f gpudoctor-job.yaml`: wait for the Job to finish, save each pod's report as
# <node>.json in FOLDER, then print the fleet table. Exit code: gpudoctor fleet's (1 = a node needs
# attention: errors, or a report that is unreadable or missing).
# Environment: NAMESPACE (default: the current one), JOB (default: gpudoctor), TIMEOUT (seconds,
# default 900), GPUDOCTOR (default: gpudoctor on PATH), KUBECTL (default: kubectl).
set -euo pipefail
folder=${1:-gpudoctor-reports}
job=${JOB:-gpudoctor}
kubectl=${KUBECTL:-kubectl}
gpudoctor=${GPUDOCTOR:-gpudoctor}
ns=()
if [ -n "${NAMESPACE:-}" ]; then
    ns=(--namespace "$NAMESPACE")
fi

# Complete or failed (a pod could not run gpudoctor, or the deadline passed): either way, collect
# what the pods wrote.
deadline=$((SECONDS + ${TIMEOUT:-900}))
until [ -n "$("$kubectl" "${ns[@]}" get "job/$job" \
    --output=jsonpath='{.status.conditions[?(@.status=="True")].type}' | grep -wE 'Complete|Failed')" ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "collect.sh: job/$job has not finished; collecting what its pods wrote so far" >&2
        break
    fi
    sleep 5
done

mkdir -p "$folder"
expected=()
while read -r pod node; do
    [ -n "$pod" ] || continue
    node=${node:-$pod}  # a pod never scheduled has no node; its name stands in
    expected+=("$node")
    "$kubectl" "${ns[@]}" logs "$pod" --container=gpudoctor > "$folder/$node.json" \
        || echo "collect.sh: no log from $pod on $node" >&2
done < <("$kubectl" "${ns[@]}" get pods --selector="job-name=$job" \
    --output=jsonpath='{range .items[*]}{.metadata.name}{" "}{.spec.nodeName}{"\n"}{end}')

if [ ${#expected[@]} -eq 0 ]; then
    echo "collect.sh: job/$job has no pods" >&2
    exit 2
fi
expect=$(IFS=,; echo "${expected[*]}")
exec "$gpudoctor" fleet --expect "$expect" "$folder"
