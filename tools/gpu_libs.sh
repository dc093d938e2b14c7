# shellcheck shell=bash
# Sourced by tools/gpu_prepare.sh and tools/gpu_check.sh: which shared libraries the device
# machine provides, so which ones the staged tree must carry.
#
# The device image (/work/.library/device: KINDS.md) has the NVIDIA driver, CUDA 13.0's toolkit and
# the CUDA wheels PyTorch uses (nvidia-cuda-runtime, nvidia-cublas, nvidia-cusolver,
# nvidia-cusparse, nvidia-nvjitlink, nvidia-curand, nvidia-cufft, nvidia-cuda-nvrtc,
# nvidia-cudnn-cu13), plus the C and C++ run-time of any Linux with a compiler. Everything else a
# binary needs (OpenBLAS, gfortran, quadmath, SQLite, libgomp) is staged.

# 0 when the device provides soname $1 from CUDA (driver, toolkit or wheels).
hn_cuda_provided() {
  case "$1" in
    libcuda.so.* | libcudart.so.* | libcublas.so.* | libcublasLt.so.* | libcusolver.so.* | \
      libcusolverMg.so.* | libcusparse.so.* | libcudnn.so.* | libcudnn_*.so.* | libnvJitLink.so.* | \
      libcurand.so.* | libcufft.so.* | libnvrtc.so.* | libnvrtc-builtins.so.*) return 0 ;;
  esac
  return 1
}

# 0 when soname $1 is part of the base system (glibc, the GCC run-time).
hn_base_system() {
  case "$1" in
    linux-vdso.so.* | ld-linux-x86-64.so.* | libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | \
      librt.so.* | libstdc++.so.* | libgcc_s.so.*) return 0 ;;
  esac
  return 1
}

# The NEEDED sonames of ELF file $1, one a line.
hn_needed() {
  readelf -d "$1" | sed -n 's/.*(NEEDED).*Shared library: \[\(.*\)\]/\1/p'
}
