#!/usr/bin/env bash
# Makes the project's Python environment, .venv at the repository root: Debian's
# python3 (it sees Debian's packages, scripts/install-deps.sh) plus the PyPI
# packages pinned in scripts/python-requirements.txt: the torch 2.11.0 wheel,
# whose LibTorch (CUDA 13.0) CMake builds against, and ONNX Runtime. ctest,
# bench_inference and the scripts run the outside checks with .venv/bin/python.
# Idempotent: an environment that already holds every pin is left as it is.
set -euo pipefail

die() { echo "install-python: $*" >&2; exit 1; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
req="$root/scripts/python-requirements.txt"
py="$venv/bin/python"

[ -x /usr/bin/python3 ] || die "/usr/bin/python3 missing: run scripts/install-deps.sh first"
/usr/bin/python3 -c 'import ensurepip' 2>/dev/null \
  || die "python3-venv missing: run scripts/install-deps.sh first"

if [ ! -x "$py" ]; then
  /usr/bin/python3 -m venv --system-site-packages "$venv" || die "cannot create $venv"
  echo "install-python: created $venv"
fi

# Every "name==version" line of the requirements, as pip freeze prints them.
wanted=$(grep -E '^[A-Za-z0-9_.-]+==' "$req" | sed 's/[[:space:]].*//' | sort)
have=$("$py" -m pip freeze --local --disable-pip-version-check 2>/dev/null | sort)
missing=$(comm -23 <(echo "$wanted") <(echo "$have"))
if [ -n "$missing" ]; then
  echo "install-python: installing $(echo $missing)"
  "$py" -m pip install --disable-pip-version-check --no-input --no-deps -q -r "$req" \
    || die "pip install -r $req failed"
else
  echo "install-python: every pin present in $venv"
fi

# The environment must run what the tests ask of it.
"$py" - <<'PY' || die "the environment does not load its packages"
import numpy, onnx, onnxruntime, torch
s = onnxruntime.get_available_providers()
assert "CPUExecutionProvider" in s, s
assert torch.__version__.split("+")[0] == "2.11.0" and torch.version.cuda == "13.0", (
    torch.__version__, torch.version.cuda, torch.__file__)
assert torch.compiled_with_cxx11_abi()
torch.ones(2).numpy()  # numpy interop with Debian's numpy
print("install-python: ok (torch %s, CUDA %s, onnxruntime %s, onnx %s, numpy %s)"
      % (torch.__version__, torch.version.cuda, onnxruntime.__version__, onnx.__version__,
         numpy.__version__))
PY
