#include "train/schedule.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace st::train {

ScheduleKind parse_schedule_kind(std::string_view name) {
  if (name == "constant") return ScheduleKind::kConstant;
  if (name == "linear") return ScheduleKind::kLinear;
  if (name == "cosine") return ScheduleKind::kCosine;
  fail("unknown schedule \"", name, "\": expected constant, linear or cosine");
}

double Schedule::factor(int64_t step) const {
  if (step < warmup_steps) return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_steps));
  if (kind == ScheduleKind::kConstant) return 1.0;
  const double span = static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps));
  const double done = static_cast<double>(step - warmup_steps);
  double f;
  if (kind == ScheduleKind::kLinear) {
    f = std::max(0.0, (span - done) / span);
  } else {
    f = std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * done / span)));
  }
  return min_lr_ratio + (1.0 - min_lr_ratio) * f;
}

}  // namespace st::train
