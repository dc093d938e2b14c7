// Compiled with -ffp-contract=off (CMakeLists.txt): the double-precision transforms must round
// identically on every host so that every backend sees the same bank.
#include "net/weight_bank.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace hn::net {

WeightBank WeightBank::zeros(int num_classes) {
  WeightBank b;
  b.num_classes_ = num_classes;
  b.slots_.resize(kNumSlots);
  for (int s = 0; s < kNumSlots; ++s) b.slots_[s].assign(slot_info(s, num_classes).numel(), 0.0f);
  return b;
}

WeightBank WeightBank::generate(InitScheme scheme, uint64_t score_seed, int num_classes,
                                uint32_t repeat) {
  WeightBank b = zeros(num_classes);
  const PhiloxKey key = philox_key(score_seed);
  const Purpose purpose = scheme == InitScheme::kDefault         ? Purpose::kDefaultInit
                          : scheme == InitScheme::kEntropy       ? Purpose::kEntropyWeights
                          : scheme == InitScheme::kKaimingNormal ? Purpose::kKaimingWeights
                                                                 : Purpose::kEntropySeedWeights;
  const uint32_t rep = scheme == InitScheme::kEntropy ? repeat : 0;
  for (int s = 0; s < kNumSlots; ++s) {
    const SlotInfo info = slot_info(s, num_classes);
    auto& w = b.slots_[s];
    for (int64_t i = 0; i < info.numel(); ++i) {
      const Philox4 r = philox_draw(key, static_cast<uint32_t>(i), s, purpose, rep);
      switch (scheme) {
        case InitScheme::kDefault: {
          // Linear layers have fan_in 64; the bias uses the weight's fan_in (PyTorch default).
          const double fan = info.kind == SlotKind::kConvWeight ? info.fan_in() : 64.0;
          w[i] = philox_uniform_pm(r, 1.0 / std::sqrt(fan));
          break;
        }
        case InitScheme::kEntropy:
          w[i] = info.kind == SlotKind::kLinearBias ? 0.0f : philox_normal_scaled(r, 1.0);
          break;
        case InitScheme::kEntropySeed:
          if (info.kind == SlotKind::kConvWeight)
            w[i] = philox_normal_scaled(r, 1.0 / std::sqrt(double(info.k) * info.k * info.cout));
          else if (info.kind == SlotKind::kLinearWeight)
            w[i] = philox_normal_scaled(r, 1.0 / std::sqrt(double(num_classes)));
          else
            w[i] = 0.0f;
          break;
        case InitScheme::kKaimingNormal: {
          const double fan = info.kind == SlotKind::kConvWeight ? info.fan_in() : 64.0;
          w[i] = info.kind == SlotKind::kLinearBias ? 0.0f : philox_normal_scaled(r, std::sqrt(2.0 / fan));
          break;
        }
      }
    }
  }
  return b;
}

void WeightBank::set_slot(int s, std::vector<float> values) {
  if (values.size() != slots_.at(s).size())
    throw std::invalid_argument("slot " + slot_name(s) + " holds " +
                                std::to_string(slots_.at(s).size()) + " values, got " +
                                std::to_string(values.size()));
  slots_[s] = std::move(values);
}

int64_t WeightBank::total_floats() const {
  int64_t n = 0;
  for (const auto& s : slots_) n += static_cast<int64_t>(s.size());
  return n;
}

std::vector<float> gaussian_images(uint64_t score_seed, Purpose purpose, uint32_t repeat,
                                   int batch, double scale) {
  const PhiloxKey key = philox_key(score_seed);
  std::vector<float> x(static_cast<size_t>(batch) * kImageNumel);
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = philox_normal_scaled(philox_draw(key, static_cast<uint32_t>(i), 0, purpose, repeat),
                                scale);
  return x;
}

}  // namespace hn::net
