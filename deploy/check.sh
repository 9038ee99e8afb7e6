#!/usr/bin/env bash
# Checks the deployment files without a cluster or a container runtime:
#   - Prometheus config and alert rules parse (promtool check config/rules),
#   - the alert rules fire as intended (promtool test rules alerts_test.yml),
#   - the Grafana dashboard is valid JSON,
#   - the YAML files parse (when python3-yaml is present),
#   - dashboards and alerts use only the metrics segqatd exports (list below).
# Exits non-zero on the first failure. Usage: deploy/check.sh
set -euo pipefail
cd "$(dirname "$0")"

PROMTOOL=${PROMTOOL:-promtool}
PYTHON=${PYTHON:-/usr/bin/python3}

# The metric names segqatd and the metrics library register.
KNOWN_METRICS="
segqat_jobs segqat_jobs_created_total segqat_job_queue_wait_seconds
segqat_job_duration_seconds segqat_workers segqat_worker_lease_expirations_total
segqat_train_loss segqat_train_learning_rate segqat_train_images_per_second
segqat_train_step_seconds segqat_eval_miou segqat_grpc_requests_total
segqat_grpc_request_duration_seconds segqat_artifact_read_bytes_total segqat_build_info
process_cpu_seconds_total process_resident_memory_bytes process_virtual_memory_bytes
process_open_fds process_max_fds process_start_time_seconds
"

step() { echo "== $*"; }

step "promtool check config"
"$PROMTOOL" check config prometheus/prometheus.yml
step "promtool check rules"
"$PROMTOOL" check rules prometheus/alerts.yml
step "promtool test rules"
(cd prometheus && "$PROMTOOL" test rules alerts_test.yml)

step "dashboard JSON"
for f in grafana/dashboards/*.json; do
  "$PYTHON" -m json.tool "$f" > /dev/null
  echo "  $f parses"
done

step "YAML files"
if "$PYTHON" -c 'import yaml' 2> /dev/null; then
  find . -name '*.yml' -o -name '*.yaml' | sort | while read -r f; do
    "$PYTHON" -c 'import sys, yaml; list(yaml.safe_load_all(open(sys.argv[1])))' "$f"
    echo "  $f parses"
  done
else
  echo "  skipped: python3-yaml not installed"
fi
if command -v kubectl > /dev/null; then
  kubectl kustomize k8s > /dev/null
  echo "  k8s/ builds with kubectl kustomize"
fi

step "metric names in dashboards and alerts"
unknown=0
for name in $(grep -ohE '\b(segqat|process)_[a-zA-Z0-9_]+' grafana/dashboards/*.json prometheus/alerts.yml \
                | sed -E 's/_(bucket|sum|count)$//' | sort -u); do
  case " $(echo $KNOWN_METRICS) " in
    *" $name "*) ;;
    *) echo "  unknown metric: $name"; unknown=1 ;;
  esac
done
[ "$unknown" -eq 0 ] || exit 1
echo "  all known"

echo "deploy/check.sh: OK"
