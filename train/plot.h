// Training curves as a self-contained SVG: a loss panel (train loss as a
// line, smoothed when long, eval loss as markers), a recipe's own panels
// (DPO's reward margin and accuracy), and a learning-rate panel, sharing
// the step axis. SVG because any browser shows it and it needs no plotting library;
// a run's plot is rewritten as training goes, atomically, so a viewer never
// sees half a file. Torch-free.
#pragma once

#include <string>
#include <vector>

namespace st {

/// One point of a curve: the optimizer step and the value there.
struct PlotPoint {
  double step, value;
};

/// A recipe's own curve (DPO's reward margin), drawn in a panel of its own
/// between the loss and the learning rate: train values as a line, eval
/// values as markers.
struct PlotPanel {
  std::string title;
  std::vector<PlotPoint> train, eval;
};

/// Writes the plot to `svg_path` (atomically). Any series may be empty; a
/// panel with nothing to show says so. Points whose step or value is not
/// finite (a NaN loss) are left out, and the title says how many.
void write_training_plot(const std::string& svg_path, const std::vector<PlotPoint>& train_loss,
                         const std::vector<PlotPoint>& eval_loss, const std::vector<PlotPoint>& lr,
                         const std::string& title, const std::vector<PlotPanel>& panels = {});

/// The SVG text write_training_plot writes (tests, and callers that embed it).
std::string training_plot_svg(const std::vector<PlotPoint>& train_loss, const std::vector<PlotPoint>& eval_loss,
                              const std::vector<PlotPoint>& lr, const std::string& title,
                              const std::vector<PlotPanel>& panels = {});

}  // namespace st
