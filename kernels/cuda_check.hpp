// One check header for every GPU library: CUDA_CHECK, CUBLAS_CHECK, CUSOLVER_CHECK, CUDNN_CHECK
// throw hn::GpuError naming the statement, file:line and the status; the *_NOTHROW forms print
// instead (destructors). A long-running scorer process survives one bad request: never exit().
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <cusolverDn.h>

#include <stdexcept>
#include <string>

namespace hn {

class GpuError : public std::runtime_error {
 public:
  GpuError(const std::string& library, const std::string& status, const char* stmt,
           const char* file, int line)
      : std::runtime_error(library + " error " + status + " in `" + stmt + "` at " + file + ":" +
                           std::to_string(line)),
        status_(status) {}
  const std::string& status() const { return status_; }

 private:
  std::string status_;
};

const char* cublas_status_name(cublasStatus_t s);
const char* cusolver_status_name(cusolverStatus_t s);

// After a kernel launch: the launch's own error, and with HYBRIDNAS_CUDA_SYNC=1 in the
// environment a synchronisation of the stream, so that a fault is reported at the kernel that
// caused it (debugging; off by default, it serialises the host and the device).
void check_launch(cudaStream_t stream, const char* kernel, const char* file, int line);

namespace detail {
[[noreturn]] void throw_gpu(const char* lib, const std::string& status, const char* stmt,
                            const char* file, int line);
void print_gpu(const char* lib, const std::string& status, const char* stmt, const char* file,
               int line);
}  // namespace detail

}  // namespace hn

#define HN_GPU_CHECK_IMPL(lib, expr, ok, name, action)                          \
  do {                                                                           \
    const auto hn_status_ = (expr);                                              \
    if (hn_status_ != (ok)) ::hn::detail::action(lib, name(hn_status_), #expr, __FILE__, __LINE__); \
  } while (0)

#define CUDA_CHECK(expr) HN_GPU_CHECK_IMPL("CUDA", expr, cudaSuccess, cudaGetErrorName, throw_gpu)
#define CUBLAS_CHECK(expr) \
  HN_GPU_CHECK_IMPL("cuBLAS", expr, CUBLAS_STATUS_SUCCESS, ::hn::cublas_status_name, throw_gpu)
#define CUSOLVER_CHECK(expr) \
  HN_GPU_CHECK_IMPL("cuSOLVER", expr, CUSOLVER_STATUS_SUCCESS, ::hn::cusolver_status_name, throw_gpu)
#define CUDNN_CHECK(expr) \
  HN_GPU_CHECK_IMPL("cuDNN", expr, CUDNN_STATUS_SUCCESS, cudnnGetErrorString, throw_gpu)

#define CUDA_CHECK_NOTHROW(expr) HN_GPU_CHECK_IMPL("CUDA", expr, cudaSuccess, cudaGetErrorName, print_gpu)
#define CUBLAS_CHECK_NOTHROW(expr) \
  HN_GPU_CHECK_IMPL("cuBLAS", expr, CUBLAS_STATUS_SUCCESS, ::hn::cublas_status_name, print_gpu)
#define CUSOLVER_CHECK_NOTHROW(expr) \
  HN_GPU_CHECK_IMPL("cuSOLVER", expr, CUSOLVER_STATUS_SUCCESS, ::hn::cusolver_status_name, print_gpu)
#define CUDNN_CHECK_NOTHROW(expr) \
  HN_GPU_CHECK_IMPL("cuDNN", expr, CUDNN_STATUS_SUCCESS, cudnnGetErrorString, print_gpu)

#define HN_CHECK_LAUNCH(stream, kernel) ::hn::check_launch(stream, kernel, __FILE__, __LINE__)
