// Training plot SVG: well-formed (elements balanced), one polyline vertex
// per finite point, eval points as markers, empty and non-finite input
// handled, text escaped, written atomically to the path asked for.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <regex>
#include <vector>

#include "common/atomic_file.h"
#include "train/plot.h"

using st::PlotPoint;

namespace {

// Checks that every element opened is closed in order; returns the first
// problem or "" for a balanced document whose root is <svg>.
std::string balance_problem(const std::string& svg) {
  std::vector<std::string> open;
  size_t roots = 0;
  for (size_t at = svg.find('<'); at != std::string::npos; at = svg.find('<', at + 1)) {
    size_t end = svg.find('>', at);
    if (end == std::string::npos) return "unterminated tag at " + std::to_string(at);
    std::string tag = svg.substr(at + 1, end - at - 1);
    if (tag.empty()) return "empty tag";
    if (tag[0] == '/') {
      std::string name = tag.substr(1);
      if (open.empty() || open.back() != name) return "unexpected </" + name + ">";
      open.pop_back();
      continue;
    }
    if (open.empty()) ++roots;
    if (tag.back() == '/') continue;  // self-closing
    open.push_back(tag.substr(0, tag.find_first_of(" \n")));
  }
  if (!open.empty()) return "unclosed <" + open.back() + ">";
  return roots == 1 ? "" : "expected one root element, found " + std::to_string(roots);
}

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// Vertex counts of every polyline, in document order.
std::vector<size_t> polyline_sizes(const std::string& svg) {
  std::vector<size_t> out;
  std::regex points("<polyline[^>]* points=\"([^\"]*)\"");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), points); it != std::sregex_iterator(); ++it) {
    const std::string list = (*it)[1];
    std::regex vertex("-?[0-9.]+,-?[0-9.]+");
    out.push_back(std::distance(std::sregex_iterator(list.begin(), list.end(), vertex), std::sregex_iterator()));
  }
  return out;
}

std::vector<PlotPoint> curve(size_t n, double (*f)(double)) {
  std::vector<PlotPoint> out;
  for (size_t i = 0; i < n; ++i) out.push_back({static_cast<double>(i + 1), f(static_cast<double>(i + 1))});
  return out;
}

}  // namespace

TEST(TrainingPlot, WellFormedWithOneVertexPerPoint) {
  auto loss = curve(120, [](double s) { return 8.0 * std::exp(-s / 40) + 1.2; });
  std::vector<PlotPoint> eval = {{30, 3.9}, {60, 2.4}, {90, 1.9}, {120, 1.6}};
  auto lr = curve(120, [](double s) { return s < 10 ? 3e-4 * s / 10 : 3e-4 * (120 - s) / 110; });
  const std::string svg = st::training_plot_svg(loss, eval, lr, "sft tiny: loss");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
  EXPECT_EQ(balance_problem(svg), "");
  // Raw train loss, its smoothed line, the learning rate.
  EXPECT_EQ(polyline_sizes(svg), (std::vector<size_t>{120, 120, 120}));
  EXPECT_EQ(count(svg, "<circle"), eval.size() + 1);  // + the legend's marker
  EXPECT_NE(svg.find("sft tiny: loss"), std::string::npos);
  EXPECT_NE(svg.find(">train loss (smoothed)<"), std::string::npos);
  EXPECT_NE(svg.find(">eval loss<"), std::string::npos);
  EXPECT_NE(svg.find(">step<"), std::string::npos);
  // A learning rate of 3e-4 is labelled in units of 1e-4, not as 0.000300.
  EXPECT_NE(svg.find("learning rate (\u00d7 1e-4)"), std::string::npos);
  EXPECT_NE(svg.find(">3.0<"), std::string::npos);
  // Nice ticks on the loss axis: whole numbers for a 1..9 range.
  EXPECT_NE(svg.find(">2<"), std::string::npos);
  EXPECT_NE(svg.find(">8<"), std::string::npos);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
}

TEST(TrainingPlot, EmptyInputStillDrawsAxes) {
  const std::string svg = st::training_plot_svg({}, {}, {}, "nothing yet");
  EXPECT_EQ(balance_problem(svg), "");
  EXPECT_TRUE(polyline_sizes(svg).empty());
  EXPECT_EQ(count(svg, "no data yet"), 2u);
  EXPECT_EQ(count(svg, "<circle"), 0u);

  // Eval points alone draw markers and no train line.
  const std::string eval_only = st::training_plot_svg({}, {{10, 2.0}}, {}, "eval");
  EXPECT_EQ(balance_problem(eval_only), "");
  EXPECT_EQ(count(eval_only, "<circle"), 2u);
  EXPECT_EQ(count(eval_only, "no data yet"), 1u);
}

TEST(TrainingPlot, SinglePointAndConstantSeries) {
  const std::string svg = st::training_plot_svg({{0, 5.0}}, {}, {{0, 0.0}}, "first step");
  EXPECT_EQ(balance_problem(svg), "");
  EXPECT_EQ(polyline_sizes(svg), (std::vector<size_t>{1, 1}));
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
}

TEST(TrainingPlot, NonFinitePointsAreLeftOutAndCounted) {
  std::vector<PlotPoint> loss = {{1, 3.0}, {2, NAN}, {3, 2.0}, {INFINITY, 1.0}};
  const std::string svg = st::training_plot_svg(loss, {}, {{1, 1e-3}}, "diverged");
  EXPECT_EQ(balance_problem(svg), "");
  EXPECT_EQ(polyline_sizes(svg), (std::vector<size_t>{2, 1}));
  EXPECT_NE(svg.find("diverged (2 non-finite points left out)"), std::string::npos);
}

TEST(TrainingPlot, TitleIsEscaped) {
  const std::string svg = st::training_plot_svg({{1, 1}}, {}, {}, "a<b & \"c\"");
  EXPECT_EQ(balance_problem(svg), "");
  EXPECT_NE(svg.find("a&lt;b &amp; &quot;c&quot;"), std::string::npos);
}

TEST(TrainingPlot, WritesTheFileAtomically) {
  const auto dir = std::filesystem::temp_directory_path() / ("plot_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "loss.svg").string();
  std::vector<PlotPoint> loss = {{1, 2.0}, {2, 1.5}};
  st::write_training_plot(path, loss, {}, {{1, 1e-4}, {2, 2e-4}}, "run");
  EXPECT_EQ(st::read_file(path), st::training_plot_svg(loss, {}, {{1, 1e-4}, {2, 2e-4}}, "run"));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator()), 1);
  std::filesystem::remove_all(dir);
}
