#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one go (CI has none): the CUDA tests of both backends,
# then the NumPyro-against-Pyro step benchmark on CPU and GPU side by side (torch at 1 thread:
# its fastest for this model on an H200 machine, on the CPU and on CUDA alike).
# Usage: bash benchmarks/gpu.sh [LOG_DIR]   (logs and the benchmark's JSON go to LOG_DIR)
set -uo pipefail
log=${1:-outputs/gpu}
mkdir -p "$log"
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false ARDAE_TEST_THREADS=4
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$log/gpu.txt"
"$py" -c "import jax, numpyro, torch, pyro; print(jax.__version__, jax.devices(), \
numpyro.__version__, torch.__version__, torch.cuda.is_available(), pyro.__version__)" \
    | tee -a "$log/gpu.txt"
(cd benchmarks && timeout 270 "$py" numpyro_speed.py --devices cpu cuda --threads 1 \
    --blocks 5) 2>&1 | tee "$log/numpyro_speed.log"
tail -n 1 "$log/numpyro_speed.log" > "$log/numpyro_speed.json"
timeout 60 "$py" -m pytest -q -p no:cacheprovider tests/test_inference.py -k cuda 2>&1 \
    | tee "$log/test_cuda.log"
timeout 180 "$py" -m pytest -q -p no:cacheprovider tests/test_numpyro.py 2>&1 \
    | tee "$log/test_numpyro_gpu.log"
