// Learning-rate schedules: the lr factor of optimizer step k (0-based) out
// of `total`, as transformers' schedules define it (LambdaLR multiplies the
// base lr by it), with an optional floor min_lr_ratio:
//   warmup   k < w:  k / w
//   constant        1
//   linear          min + (1 - min) * max(0, (T - k) / (T - w))
//   cosine          min + (1 - min) * 0.5 * (1 + cos(pi * (k - w) / (T - w)))
// With min 0, linear and cosine are get_linear_schedule_with_warmup and
// get_cosine_schedule_with_warmup; cosine with min is
// get_cosine_with_min_lr_schedule_with_warmup(min_lr_rate=min).
#pragma once

#include <cstdint>
#include <string_view>

namespace st::train {

enum class ScheduleKind { kConstant, kLinear, kCosine };
ScheduleKind parse_schedule_kind(std::string_view name);

struct Schedule {
  ScheduleKind kind = ScheduleKind::kCosine;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  double min_lr_ratio = 0.0;
  /// The factor of step k (0-based).
  double factor(int64_t step) const;
};

}  // namespace st::train
