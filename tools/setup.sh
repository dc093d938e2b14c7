#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks (apt-get) and builds hybridnas (Release) into build/.
# The CUDA toolkit is expected at /usr/local/cuda. CUDA architectures: $CUDA_ARCHS (default 90).
set -euo pipefail
cd "$(dirname "$0")/.."

source tools/apt_missing.sh
apt_missing setup cmake g++ make libcli11-dev nlohmann-json3-dev libopenblas-dev liblapack-dev libgtest-dev \
  libsqlite3-dev libdnnl-dev libopenmpi-dev openmpi-bin python3-torch python3-numpy python3-scipy

export PATH=/usr/local/cuda/bin:$PATH
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHS:-90}" >/dev/null
cmake --build build -j"$(nproc)"
