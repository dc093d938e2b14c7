// Compiled with -ffp-contract=off (CMakeLists.txt): the double-precision transforms must round
// identically on every host so that every backend sees the same bank.
#include "net/weight_bank.hpp"

#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

namespace hn::net {

WeightBank WeightBank::zeros(int num_classes, Space space) {
  WeightBank b;
  b.num_classes_ = num_classes;
  b.space_ = space;
  b.slots_.resize(kNumSlots);
  for (int s = 0; s < kNumSlots; ++s)
    if (slot_space(s) == space && slot_used(s)) b.slots_[s].assign(slot_info(s, num_classes).numel(), 0.0f);
  return b;
}

namespace {
// The Philox (element, slot) of element i of a slot. NB201: (i, slot). NATS-SSS: the element's
// place in its family's widest tensor (64 output and input channels; the stem's 3 inputs) and the
// family, so a narrower slot draws a corner of the wider ones' numbers (docs/nats_sss.md "Weights").
std::pair<uint32_t, uint32_t> counter_of(int slot, const SlotInfo& info, int64_t i) {
  if (slot < kSssSlotBase) return {static_cast<uint32_t>(i), static_cast<uint32_t>(slot)};
  const int64_t kk = int64_t(info.k) * info.k;
  const int64_t o = i / (int64_t(info.cin) * kk), c = (i / kk) % info.cin, r = i % kk;
  const int family = sss_slot_family(slot);
  const int64_t wide_in = family == kSssFamilyLinearBias ? 1 : family == kSssFamilyStem ? kImageChannels : 64;
  return {static_cast<uint32_t>((o * wide_in + c) * kk + r), static_cast<uint32_t>(1000 + sss_slot_family(slot))};
}
}  // namespace

WeightBank WeightBank::generate(InitScheme scheme, uint64_t score_seed, int num_classes,
                                uint32_t repeat, Space space) {
  WeightBank b = zeros(num_classes, space);
  const PhiloxKey key = philox_key(score_seed);
  const Purpose purpose = scheme == InitScheme::kDefault         ? Purpose::kDefaultInit
                          : scheme == InitScheme::kEntropy       ? Purpose::kEntropyWeights
                          : scheme == InitScheme::kKaimingNormal ? Purpose::kKaimingWeights
                                                                 : Purpose::kEntropySeedWeights;
  const uint32_t rep = scheme == InitScheme::kEntropy ? repeat : 0;
  for (int s = 0; s < kNumSlots; ++s) {
    auto& w = b.slots_[s];
    if (w.empty()) continue;
    const SlotInfo info = slot_info(s, num_classes);
    // Linear layers have fan_in = the head's width; the bias uses the weight's fan_in (PyTorch default).
    const double linear_fan = info.kind == SlotKind::kLinearBias ? info.head_width : info.cin;
    for (int64_t i = 0; i < info.numel(); ++i) {
      const auto [element, counter_slot] = counter_of(s, info, i);
      const Philox4 r = philox_draw(key, element, counter_slot, purpose, rep);
      switch (scheme) {
        case InitScheme::kDefault: {
          const double fan = info.kind == SlotKind::kConvWeight ? info.fan_in() : linear_fan;
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
          const double fan = info.kind == SlotKind::kConvWeight ? info.fan_in() : linear_fan;
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
