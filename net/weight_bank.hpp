// The weight bank (SPEC.md 2): every parameter slot's tensor for one init scheme and score seed,
// generated on the host once per run and shared by all architectures (common random numbers).
// Also the Gaussian input batches. Element i of slot s is drawn from Philox counter
// (i, s, purpose, repeat) under key = score seed (NATS-SSS slots: see generate).
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/philox.cuh"
#include "net/plan.hpp"

namespace hn::net {

enum class InitScheme : uint8_t {
  kDefault,      // PyTorch default init (naswot, ni, ntk): U(-1/sqrt(fan_in), +), bias U(-1/8, 1/8)
  kEntropy,      // MAE-DET entropy: N(0,1) conv weights, fresh per repeat
  kEntropySeed,  // entropy_seed: conv N(0,1)/sqrt(k*k*Cout), linear N(0,1)/sqrt(num_classes), bias 0
  kKaimingNormal,  // AZ-NAS: conv and linear N(0,1) * sqrt(2 / fan_in) (kaiming_normal_, fan_in, ReLU gain), bias 0
};

class WeightBank {
 public:
  WeightBank() = default;
  // Materialises the slots of `space` that its networks use (net::slot_used); the other slots
  // are empty.
  static WeightBank generate(InitScheme scheme, uint64_t score_seed, int num_classes,
                             uint32_t repeat = 0, Space space = Space::kNb201);
  // An all-zero bank of the right shapes (for loading foreign weights slot by slot).
  static WeightBank zeros(int num_classes, Space space = Space::kNb201);

  int num_classes() const { return num_classes_; }
  Space space() const { return space_; }
  const std::vector<float>& slot(int s) const { return slots_.at(s); }
  // Replace one slot; throws std::invalid_argument on a size mismatch.
  void set_slot(int s, std::vector<float> values);
  int64_t total_floats() const;

 private:
  int num_classes_ = 0;
  Space space_ = Space::kNb201;
  std::vector<std::vector<float>> slots_;
};

// scale * N(0,1) images for a batch: element n*3072 + c*1024 + y*32 + x, slot 0.
std::vector<float> gaussian_images(uint64_t score_seed, Purpose purpose, uint32_t repeat,
                                   int batch, double scale = 1.0);

}  // namespace hn::net
