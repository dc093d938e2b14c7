// Move-only RAII for device memory, pinned memory, streams, events and library handles, plus
// device discovery. Destructors never throw (*_CHECK_NOTHROW).
#pragma once
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cuda_check.hpp"

namespace hn::gpu {

// Number of usable GPUs: 0 when there is no driver (cudaGetDeviceCount returns error 35,
// cudaErrorInsufficientDriver, not 100) or no device. `why` says which.
int device_count(std::string* why = nullptr);

struct DeviceInfo {
  int index;
  std::string name;
  int cc_major, cc_minor;
  int multiprocessors;
  size_t memory_bytes;
  double peak_fp32_tflops;  // SMs x FP32 lanes x 2 x clock (an estimate for FLOP/s reports)
};
std::vector<DeviceInfo> list_devices();
std::string driver_version();
// "CUDA runtime 12.4 (built with 12.4), cuBLAS 12.4.5, cuDNN 9.1.0 (built with 9.1.0)": what this
// binary was compiled against and what it loads at run time (they can differ: a newer driver's
// runtime, another cuDNN on LD_LIBRARY_PATH). Needs no GPU.
std::string library_versions();

template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t n) : n_(n) {
    if (n) CUDA_CHECK(cudaMalloc(&p_, n * sizeof(T)));
  }
  ~DeviceBuffer() {
    if (p_) CUDA_CHECK_NOTHROW(cudaFree(p_));
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      this->~DeviceBuffer();
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return p_; }
  size_t size() const { return n_; }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

// Stream-ordered allocation (cudaMallocAsync): freed on the stream, in order.
template <typename T>
class StreamBuffer {
 public:
  StreamBuffer() = default;
  StreamBuffer(size_t n, cudaStream_t s) : n_(n), s_(s) {
    if (n) CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&p_), n * sizeof(T), s));
  }
  ~StreamBuffer() {
    if (p_) CUDA_CHECK_NOTHROW(cudaFreeAsync(p_, s_));
  }
  StreamBuffer(StreamBuffer&& o) noexcept
      : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)), s_(o.s_) {}
  StreamBuffer& operator=(StreamBuffer&& o) noexcept {
    if (this != &o) {
      this->~StreamBuffer();
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
      s_ = o.s_;
    }
    return *this;
  }
  StreamBuffer(const StreamBuffer&) = delete;
  StreamBuffer& operator=(const StreamBuffer&) = delete;
  T* get() const { return p_; }
  size_t size() const { return n_; }
  explicit operator bool() const { return p_ != nullptr; }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
  cudaStream_t s_ = nullptr;
};

template <typename T>
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(size_t n) : n_(n) {
    if (n) CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&p_), n * sizeof(T)));
  }
  ~PinnedBuffer() {
    if (p_) CUDA_CHECK_NOTHROW(cudaFreeHost(p_));
  }
  PinnedBuffer(PinnedBuffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  PinnedBuffer& operator=(PinnedBuffer&& o) noexcept {
    if (this != &o) {
      this->~PinnedBuffer();
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  T* get() const { return p_; }
  T& operator[](size_t i) const { return p_[i]; }
  size_t size() const { return n_; }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

class Stream {
 public:
  Stream() { CUDA_CHECK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
  ~Stream() {
    if (s_) CUDA_CHECK_NOTHROW(cudaStreamDestroy(s_));
  }
  Stream(Stream&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return s_; }
  void sync() const { CUDA_CHECK(cudaStreamSynchronize(s_)); }

 private:
  cudaStream_t s_ = nullptr;
};

class Event {
 public:
  Event() { CUDA_CHECK(cudaEventCreate(&e_)); }
  ~Event() {
    if (e_) CUDA_CHECK_NOTHROW(cudaEventDestroy(e_));
  }
  Event(Event&& o) noexcept : e_(std::exchange(o.e_, nullptr)) {}
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return e_; }
  void record(cudaStream_t s) const { CUDA_CHECK(cudaEventRecord(e_, s)); }
  // Milliseconds from `start` to this event (both recorded and complete).
  float since(const Event& start) const {
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start.e_, e_));
    return ms;
  }

 private:
  cudaEvent_t e_ = nullptr;
};

class CublasHandle {
 public:
  explicit CublasHandle(cudaStream_t s, bool tf32) {
    CUBLAS_CHECK(cublasCreate(&h_));
    CUBLAS_CHECK(cublasSetStream(h_, s));
    // FP32 without TF32 unless asked: SPEC.md 2.
    CUBLAS_CHECK(cublasSetMathMode(h_, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH));
  }
  ~CublasHandle() {
    if (h_) CUBLAS_CHECK_NOTHROW(cublasDestroy(h_));
  }
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  cublasHandle_t get() const { return h_; }

 private:
  cublasHandle_t h_ = nullptr;
};

class CusolverHandle {
 public:
  explicit CusolverHandle(cudaStream_t s) {
    CUSOLVER_CHECK(cusolverDnCreate(&h_));
    CUSOLVER_CHECK(cusolverDnSetStream(h_, s));
  }
  ~CusolverHandle() {
    if (h_) CUSOLVER_CHECK_NOTHROW(cusolverDnDestroy(h_));
  }
  CusolverHandle(const CusolverHandle&) = delete;
  CusolverHandle& operator=(const CusolverHandle&) = delete;
  cusolverDnHandle_t get() const { return h_; }

 private:
  cusolverDnHandle_t h_ = nullptr;
};

class CudnnHandle {
 public:
  explicit CudnnHandle(cudaStream_t s) {
    CUDNN_CHECK(cudnnCreate(&h_));
    CUDNN_CHECK(cudnnSetStream(h_, s));
  }
  ~CudnnHandle() {
    if (h_) CUDNN_CHECK_NOTHROW(cudnnDestroy(h_));
  }
  CudnnHandle(const CudnnHandle&) = delete;
  CudnnHandle& operator=(const CudnnHandle&) = delete;
  cudnnHandle_t get() const { return h_; }

 private:
  cudnnHandle_t h_ = nullptr;
};

}  // namespace hn::gpu
