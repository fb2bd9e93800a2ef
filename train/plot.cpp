// SVG training plot: layout, "nice" axis ticks (1, 2 or 5 times a power of
// ten, so labels read 0.5 1 1.5 rather than 0.47 0.94 1.41) and the curves.
#include "train/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/atomic_file.h"

namespace st {
namespace {

// Canvas and panel geometry, in SVG user units (pixels at 100% zoom).
constexpr double kWidth = 800, kHeight = 580;
constexpr double kLeft = 84, kRight = 24;
constexpr double kLossTop = 56, kLossHeight = 280;
constexpr double kLrTop = 392, kLrHeight = 130;
constexpr double kPanelHeight = 110, kPanelGap = 36;  // a recipe's own panels, each above the learning rate
constexpr int kTargetTicks = 6;

const char* const kTrainColour = "#1f77b4";
const char* const kEvalColour = "#d62728";
const char* const kLrColour = "#2ca02c";

std::string number(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, value);
  return buffer;
}

std::string escape_xml(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

// The finite points, ordered by step (a resumed run may append out of order).
std::vector<PlotPoint> finite_sorted(const std::vector<PlotPoint>& points, size_t* dropped) {
  std::vector<PlotPoint> out;
  for (const PlotPoint& p : points) {
    if (std::isfinite(p.step) && std::isfinite(p.value)) out.push_back(p);
    else ++*dropped;
  }
  std::stable_sort(out.begin(), out.end(), [](const PlotPoint& a, const PlotPoint& b) { return a.step < b.step; });
  return out;
}

// An axis: a range widened to whole multiples of a nice tick step.
struct Axis {
  double lo = 0, hi = 1, step = 0.2;
  // Labels are divided by `scale` (a power of ten) when the numbers are
  // tiny or huge, and the axis title says "x 1e-4" instead.
  int exponent = 0;

  std::vector<double> ticks() const {
    std::vector<double> out;
    for (double t = lo; t <= hi + step * 1e-6; t += step) out.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
    return out;
  }
  std::string label(double value) const {
    const double scaled = value / std::pow(10.0, exponent);
    const double scaled_step = step / std::pow(10.0, exponent);
    const int decimals = std::max(0, -static_cast<int>(std::floor(std::log10(scaled_step) + 1e-9)));
    return number(("%." + std::to_string(decimals) + "f").c_str(), scaled);
  }
};

double nice_step(double range) {
  const double raw = range / kTargetTicks;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  const double fraction = raw / power;
  return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power;
}

Axis make_axis(double lo, double hi) {
  if (!(hi > lo)) {  // a single value: open a window around it
    const double pad = lo != 0 ? std::abs(lo) * 0.1 : 1.0;
    lo -= pad;
    hi += pad;
  }
  Axis axis;
  axis.step = nice_step(hi - lo);
  axis.lo = std::floor(lo / axis.step + 1e-9) * axis.step;
  axis.hi = std::ceil(hi / axis.step - 1e-9) * axis.step;
  const double largest = std::max(std::abs(axis.lo), std::abs(axis.hi));
  const int magnitude = static_cast<int>(std::floor(std::log10(largest)));
  if (magnitude < -3 || magnitude >= 6) axis.exponent = magnitude;
  return axis;
}

// Range of a set of values; [0, 1] when there are none.
std::pair<double, double> span(std::initializer_list<const std::vector<PlotPoint>*> series, bool steps) {
  double lo = INFINITY, hi = -INFINITY;
  for (const auto* points : series)
    for (const PlotPoint& p : *points) {
      const double v = steps ? p.step : p.value;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  if (lo > hi) return {0, 1};
  return {lo, hi};
}

// One panel: frame, grid, tick labels, axis titles; maps data to pixels.
class Panel {
 public:
  Panel(double top, double height, Axis x, Axis y) : top_(top), height_(height), x_(x), y_(y) {}

  double px(double step) const { return kLeft + (step - x_.lo) / (x_.hi - x_.lo) * (kWidth - kLeft - kRight); }
  double py(double value) const { return top_ + height_ - (value - y_.lo) / (y_.hi - y_.lo) * height_; }

  void draw_frame(std::string& svg, const std::string& y_title) const {
    const double right = kWidth - kRight, bottom = top_ + height_;
    svg += "<g class=\"grid\" stroke=\"#e4e4e4\" stroke-width=\"1\">\n";
    for (double t : y_.ticks())
      svg += line(kLeft, py(t), right, py(t));
    for (double t : x_.ticks())
      svg += line(px(t), top_, px(t), bottom);
    svg += "</g>\n";
    svg += "<rect x=\"" + number("%.2f", kLeft) + "\" y=\"" + number("%.2f", top_) + "\" width=\"" +
           number("%.2f", right - kLeft) + "\" height=\"" + number("%.2f", height_) +
           "\" fill=\"none\" stroke=\"#444\" stroke-width=\"1\"/>\n";
    svg += "<g class=\"ticks\" font-size=\"11\" fill=\"#333\">\n";
    for (double t : y_.ticks())
      svg += text(kLeft - 6, py(t) + 4, y_.label(t), "end");
    for (double t : x_.ticks())
      svg += text(px(t), bottom + 16, x_.label(t), "middle");
    svg += "</g>\n";
    std::string title = y_title;
    if (y_.exponent) title += " (\u00d7 1e" + std::to_string(y_.exponent) + ")";
    const double mid = top_ + height_ / 2;
    svg += "<text x=\"20\" y=\"" + number("%.2f", mid) + "\" font-size=\"13\" text-anchor=\"middle\" transform=\"rotate(-90 20 " +
           number("%.2f", mid) + ")\">" + escape_xml(title) + "</text>\n";
  }

  void draw_empty(std::string& svg) const {
    svg += text((kLeft + kWidth - kRight) / 2, top_ + height_ / 2, "no data yet", "middle", "#999");
  }

  std::string polyline(const std::vector<PlotPoint>& points, const char* colour, double opacity = 1) const {
    std::string out = "<polyline fill=\"none\" stroke=\"" + std::string(colour) + "\" stroke-opacity=\"" +
                      number("%.2f", opacity) + "\" stroke-width=\"1.5\" stroke-linejoin=\"round\" points=\"";
    for (size_t i = 0; i < points.size(); ++i)
      out += (i ? " " : "") + number("%.2f", px(points[i].step)) + "," + number("%.2f", py(points[i].value));
    return out + "\"/>\n";
  }

  std::string markers(const std::vector<PlotPoint>& points, const char* colour) const {
    std::string out = "<g fill=\"" + std::string(colour) + "\" stroke=\"white\" stroke-width=\"1\">\n";
    for (const PlotPoint& p : points)
      out += "<circle cx=\"" + number("%.2f", px(p.step)) + "\" cy=\"" + number("%.2f", py(p.value)) + "\" r=\"4\"/>\n";
    return out + "</g>\n";
  }

  static std::string line(double x1, double y1, double x2, double y2) {
    return "<line x1=\"" + number("%.2f", x1) + "\" y1=\"" + number("%.2f", y1) + "\" x2=\"" + number("%.2f", x2) +
           "\" y2=\"" + number("%.2f", y2) + "\"/>\n";
  }
  static std::string text(double x, double y, const std::string& body, const char* anchor,
                          const char* colour = nullptr) {
    std::string out = "<text x=\"" + number("%.2f", x) + "\" y=\"" + number("%.2f", y) + "\" text-anchor=\"" + anchor + "\"";
    if (colour) out += " fill=\"" + std::string(colour) + "\"";
    return out + ">" + escape_xml(body) + "</text>\n";
  }

 private:
  double top_, height_;
  Axis x_, y_;
};

// Per-step losses are noisy (every batch is different), which hides the
// trend. Long curves also get a centred moving average, drawn over the raw
// curve kept faint: centred, because a trailing average (an EMA) lags
// behind the fast early descent and draws the trend above the data. The
// window grows with the run (about 1/50 of the points), so the line looks
// alike at 100 and 100000 steps; near the ends it shrinks to what exists.
constexpr size_t kSmoothFrom = 50;

std::vector<PlotPoint> smoothed(const std::vector<PlotPoint>& points) {
  const size_t n = points.size(), half = std::max<size_t>(1, n / 100);
  std::vector<double> prefix(n + 1, 0.0);
  for (size_t i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + points[i].value;
  std::vector<PlotPoint> out;
  for (size_t i = 0; i < n; ++i) {
    const size_t lo = i >= half ? i - half : 0, hi = std::min(n, i + half + 1);
    out.push_back({points[i].step, (prefix[hi] - prefix[lo]) / static_cast<double>(hi - lo)});
  }
  return out;
}

// Legend entries at the top right of the loss panel.
std::string legend(bool train, bool smooth, bool eval) {
  std::string out;
  double x = kWidth - kRight - 180, y = kLossTop + 18;
  if (train) {
    out += "<line x1=\"" + number("%.2f", x) + "\" y1=\"" + number("%.2f", y - 4) + "\" x2=\"" + number("%.2f", x + 24) +
           "\" y2=\"" + number("%.2f", y - 4) + "\" stroke=\"" + kTrainColour + "\" stroke-width=\"2\"/>\n";
    out += Panel::text(x + 30, y, smooth ? "train loss (smoothed)" : "train loss", "start");
    y += 18;
  }
  if (eval) {
    out += "<circle cx=\"" + number("%.2f", x + 12) + "\" cy=\"" + number("%.2f", y - 4) + "\" r=\"4\" fill=\"" +
           kEvalColour + "\"/>\n";
    out += Panel::text(x + 30, y, "eval loss", "start");
  }
  return out;
}

}  // namespace

std::string training_plot_svg(const std::vector<PlotPoint>& train_loss, const std::vector<PlotPoint>& eval_loss,
                              const std::vector<PlotPoint>& lr, const std::string& title,
                              const std::vector<PlotPanel>& panels) {
  size_t dropped = 0;
  const std::vector<PlotPoint> train = finite_sorted(train_loss, &dropped);
  const std::vector<PlotPoint> eval = finite_sorted(eval_loss, &dropped);
  const std::vector<PlotPoint> rate = finite_sorted(lr, &dropped);
  std::vector<PlotPanel> extra;
  for (const PlotPanel& panel : panels)
    extra.push_back({panel.title, finite_sorted(panel.train, &dropped), finite_sorted(panel.eval, &dropped)});
  const double shift = static_cast<double>(extra.size()) * (kPanelHeight + kPanelGap);
  const double lr_top = kLrTop + shift, height = kHeight + shift;

  auto [step_lo, step_hi] = span({&train, &eval, &rate}, /*steps=*/true);
  for (const PlotPanel& panel : extra) {
    auto [lo, hi] = span({&panel.train, &panel.eval}, /*steps=*/true);
    if (!panel.train.empty() || !panel.eval.empty()) step_lo = std::min(step_lo, lo), step_hi = std::max(step_hi, hi);
  }
  const Axis steps = make_axis(step_lo, step_hi);
  auto [loss_lo, loss_hi] = span({&train, &eval}, /*steps=*/false);
  const Axis loss = make_axis(loss_lo, loss_hi);
  auto [lr_lo, lr_hi] = span({&rate}, /*steps=*/false);
  // Learning rates are drawn from zero: warmup starts there and the decay
  // ends near it, and a range of [2.9e-4, 3e-4] would exaggerate wiggles.
  const Axis rates = make_axis(std::min(lr_lo, 0.0), lr_hi);

  std::string heading = title;
  if (dropped) heading += " (" + std::to_string(dropped) + " non-finite points left out)";

  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + number("%.0f", kWidth) + "\" height=\"" +
                    number("%.0f", height) + "\" viewBox=\"0 0 " + number("%.0f", kWidth) + " " +
                    number("%.0f", height) + "\" font-family=\"sans-serif\">\n";
  svg += "<title>" + escape_xml(heading) + "</title>\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg += Panel::text(kWidth / 2, 28, heading, "middle");

  const Panel loss_panel(kLossTop, kLossHeight, steps, loss);
  loss_panel.draw_frame(svg, "loss");
  if (train.empty() && eval.empty()) loss_panel.draw_empty(svg);
  const bool smooth = train.size() >= kSmoothFrom;
  if (smooth) {
    svg += loss_panel.polyline(train, kTrainColour, 0.3);
    svg += loss_panel.polyline(smoothed(train), kTrainColour);
  } else if (!train.empty()) {
    svg += loss_panel.polyline(train, kTrainColour);
  }
  if (!eval.empty()) svg += loss_panel.markers(eval, kEvalColour);
  svg += legend(!train.empty(), smooth, !eval.empty());

  for (size_t i = 0; i < extra.size(); ++i) {
    const PlotPanel& p = extra[i];
    auto [lo, hi] = span({&p.train, &p.eval}, /*steps=*/false);
    const Panel panel(kLrTop + static_cast<double>(i) * (kPanelHeight + kPanelGap), kPanelHeight, steps,
                      make_axis(lo, hi));
    panel.draw_frame(svg, p.title);
    if (p.train.empty() && p.eval.empty()) panel.draw_empty(svg);
    if (!p.train.empty()) svg += panel.polyline(p.train, kTrainColour);
    if (!p.eval.empty()) svg += panel.markers(p.eval, kEvalColour);
  }

  const Panel lr_panel(lr_top, kLrHeight, steps, rates);
  lr_panel.draw_frame(svg, "learning rate");
  if (rate.empty()) lr_panel.draw_empty(svg);
  else svg += lr_panel.polyline(rate, kLrColour);
  const std::string step_title = steps.exponent ? "step (\u00d7 1e" + std::to_string(steps.exponent) + ")" : "step";
  svg += Panel::text((kLeft + kWidth - kRight) / 2, lr_top + kLrHeight + 40, step_title, "middle");
  svg += "</svg>\n";
  return svg;
}

void write_training_plot(const std::string& svg_path, const std::vector<PlotPoint>& train_loss,
                         const std::vector<PlotPoint>& eval_loss, const std::vector<PlotPoint>& lr,
                         const std::string& title, const std::vector<PlotPanel>& panels) {
  write_file_atomic(svg_path, training_plot_svg(train_loss, eval_loss, lr, title, panels));
}

}  // namespace st
