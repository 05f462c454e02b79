#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one go (CI has none). Parts, all by default:
#   numpyro: the CUDA tests of both backends, then the NumPyro-against-Pyro step benchmark on
#            CPU and GPU side by side (torch at 1 thread: its fastest for this model on an
#            H200 machine, on the CPU and on CUDA alike);
#   sac:     the SAC example's CUDA tests, then a short HalfCheetah-v5 run of both policies
#            (500 updates each, torch at 2 threads as on the 2-core CI machine) on the GPU
#            and on the CPU, for their updates per second;
#   vae:     the VAE example's CUDA tests, then its benchmark's --quick setting on the GPU and
#            on the CPU (MNIST from $ARDAE_DATA_DIR, else ../shared/data).
# Usage: bash benchmarks/gpu.sh [LOG_DIR [PART ...]]   (logs and JSON lines go to LOG_DIR)
set -uo pipefail
log=${1:-outputs/gpu}
shift || true
parts=${*:-numpyro sac vae}
for part in $parts; do
    case $part in
        numpyro | sac | vae) ;;
        *) echo "gpu.sh: expected parts among 'numpyro sac vae', got '$part'" >&2; exit 2 ;;
    esac
done
mkdir -p "$log"
log=$(cd "$log" && pwd)
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false ARDAE_TEST_THREADS=4
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$log/gpu.txt"
"$py" -c "import jax, numpyro, torch, pyro; print(jax.__version__, jax.devices(), \
numpyro.__version__, torch.__version__, torch.cuda.is_available(), pyro.__version__)" \
    | tee -a "$log/gpu.txt"

numpyro() {
    (timeout 270 "$py" -m benchmarks.numpyro_speed --devices cpu cuda --threads 1 \
        --blocks 5) 2>&1 | tee "$log/numpyro_speed.log"
    tail -n 1 "$log/numpyro_speed.log" > "$log/numpyro_speed.json"
    timeout 60 "$py" -m pytest -q -p no:cacheprovider tests/test_inference.py -k cuda 2>&1 \
        | tee "$log/test_cuda.log"
    timeout 180 "$py" -m pytest -q -p no:cacheprovider tests/test_numpyro.py 2>&1 \
        | tee "$log/test_numpyro_gpu.log"
}

sac() {
    timeout 120 "$py" -m pytest -q -p no:cacheprovider tests/test_sac.py -k cuda 2>&1 \
        | tee "$log/test_sac_cuda.log"
    for device in cuda cpu; do
        (timeout 240 "$py" -m benchmarks.sac --env HalfCheetah-v5 --steps 1500 \
            --learning-starts 1000 --eval-episodes 1 --threads 2 --device "$device" \
            --out-dir "$log/sac_$device") 2>&1 | tee "$log/sac_$device.log"
        tail -n 1 "$log/sac_$device.log" > "$log/sac_$device.json"
    done
}

vae() {
    local data
    data=$(cd "${ARDAE_DATA_DIR:-../shared/data}" && pwd) || return
    ARDAE_DATA_DIR=$data timeout 240 "$py" -m pytest -q -p no:cacheprovider \
        tests/test_vae_mnist.py -k cuda 2>&1 | tee "$log/test_vae_cuda.log"
    for device in cuda cpu; do
        (timeout 240 "$py" -m benchmarks.vae_mnist --quick --threads 2 --device "$device" \
            --data-dir "$data") 2>&1 | tee "$log/vae_$device.log"
        tail -n 1 "$log/vae_$device.log" > "$log/vae_$device.json"
    done
}

for part in $parts; do
    "$part"
done
