// NVTX ranges in one project domain ("hybridnas"), for Nsight Systems / Compute.
#pragma once
#include <nvtx3/nvtx3.hpp>

namespace hn {
struct NvtxDomain {
  static constexpr const char* name{"hybridnas"};
};
using NvtxRange = nvtx3::scoped_range_in<NvtxDomain>;
}  // namespace hn

#define HN_NVTX_CONCAT2(a, b) a##b
#define HN_NVTX_CONCAT(a, b) HN_NVTX_CONCAT2(a, b)
#define HN_NVTX_RANGE(name) ::hn::NvtxRange HN_NVTX_CONCAT(hn_nvtx_, __LINE__){name}
