// chokepoint usl DATA.csv [--json] [-o page.html]: fits the Universal Scalability Law to measured
// throughput; -o also draws the fit as the knee page's USL panel (report/page.h usl_html).
#include <fmt/format.h>
#include <cmath>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "app/subcommand.h"
#include "loadgen/usl.h"
#include "render/json_text.h"
#include "render/knee_report.h"
#include "report/page.h"
#include "util/atomic_file.h"
#include "util/escape.h"
#include "util/fatal.h"

namespace chokepoint::app {

namespace {

struct UslArgs {
  std::string path;
  bool json = false;
  std::string html;  // -o: the page's path ("" for none)
};

std::string fmt_num(double v) {
  if (std::isinf(v)) return "inf";
  return fmt::format("{:.4g}", v);
}

// The fit drawn on its own page (report/page.h usl_html), written whole or not at all.
void write_usl_page(const std::string& page_path, const std::string& data_path,
                    const loadgen::UslFileFit& data) {
  nlohmann::json u;
  u["points"] = nlohmann::json::array();
  for (const auto& p : data.points)
    u["points"].push_back({{"concurrency", p.concurrency}, {"throughput", p.throughput}});
  render::add_usl_fit_json(u, data.fit);
  const std::string page = report::usl_html(data_path, u);
  if (auto w = util::write_file_atomically(page_path, page); !w) throw util::FatalError(w.error());
  std::cerr << fmt::format("chokepoint: wrote {} ({} bytes)\n", util::terminal_text(page_path),
                           page.size());
}

int run_usl(const UslArgs& args) {
  if (!args.html.empty()) {
    if (auto w = util::check_writable(args.html); !w) throw util::FatalError(w.error());
  }
  auto data = loadgen::fit_usl_file(args.path);
  if (!data) throw util::FatalError(data.error());
  if (!args.html.empty()) write_usl_page(args.html, args.path, *data);
  const std::vector<loadgen::UslPoint>* points = &data->points;
  const loadgen::UslFit* fit = &data->fit;
  const loadgen::UslModel& m = fit->model;
  const double n_star = m.n_star();
  const double x_max = m.x_max();

  if (args.json) {
    nlohmann::json j;
    j["file"] = args.path;
    j["lambda"] = m.lambda;
    j["sigma"] = m.sigma;
    j["kappa"] = m.kappa;
    j["r2"] = fit->r2;
    // JSON has no infinity: an unbounded N* or ceiling is null, and the flag says why.
    j["n_star"] = std::isinf(n_star) ? nlohmann::json(nullptr) : nlohmann::json(n_star);
    j["x_max"] = std::isinf(x_max) ? nlohmann::json(nullptr) : nlohmann::json(x_max);
    j["n_star_infinite"] = std::isinf(n_star);
    j["x_max_infinite"] = std::isinf(x_max);
    j["sigma_pinned_at_zero"] = fit->sigma_pinned;
    j["kappa_pinned_at_zero"] = fit->kappa_pinned;
    j["points"] = nlohmann::json::array();
    for (const auto& p : *points) {
      j["points"].push_back({{"concurrency", p.concurrency},
                             {"measured", p.throughput},
                             {"fitted", m.predict(p.concurrency)}});
    }
    std::cout << render::json_text(j);
    return util::kExitOk;
  }

  std::cout << fmt::format("USL fit of {} ({} points, R² = {:.4f})\n",
                           util::terminal_text(args.path), fit->points, fit->r2);
  std::cout << fmt::format("  λ  lambda  {:>12}  throughput of one unit of concurrency\n",
                           fmt_num(m.lambda));
  std::cout << fmt::format("  σ  sigma   {:>12}  contention (serialized share){}\n",
                           fmt_num(m.sigma), fit->sigma_pinned ? ", pinned at 0" : "");
  std::cout << fmt::format("  κ  kappa   {:>12}  coherency (crosstalk) cost{}\n", fmt_num(m.kappa),
                           fit->kappa_pinned ? ", pinned at 0" : "");
  if (std::isinf(n_star)) {
    std::cout << "  N*         inf           no peak: κ = 0, throughput never falls with "
                 "concurrency\n";
  } else {
    std::cout << fmt::format("  N*      {:>12}     concurrency at peak throughput, sqrt((1-σ)/κ)\n",
                             fmt::format("{:.1f}", n_star));
  }
  if (std::isinf(x_max)) {
    std::cout << "  X max      inf           no ceiling: scaling is linear\n";
  } else {
    std::cout << fmt::format("  X max   {:>12}     ceiling throughput{}\n",
                             fmt::format("{:.1f}", x_max),
                             std::isinf(n_star) ? " (asymptote λ/σ)" : ", X(N*)");
  }
  std::cout << "\n  concurrency      measured        fitted    error\n";
  for (const auto& p : *points) {
    const double f = m.predict(p.concurrency);
    const double err = p.throughput != 0 ? (f - p.throughput) / p.throughput * 100 : 0;
    std::cout << fmt::format("  {:>11.6g}  {:>12.6g}  {:>12.6g}  {:>6.1f}%\n", p.concurrency,
                             p.throughput, f, err);
  }
  return util::kExitOk;
}

}  // namespace

Subcommand make_usl_command(CLI::App& root) {
  auto args = std::make_shared<UslArgs>();
  CLI::App* cli = root.add_subcommand(
      "usl", "Fit the Universal Scalability Law to measured concurrency,throughput rows");
  cli->add_option("DATA.csv", args->path,
                  "CSV with rows 'concurrency,throughput' (header optional)")
      ->required();
  cli->add_flag("--json", args->json, "print the fit as JSON");
  cli->add_option("-o,--output", args->html,
                  "also write the fit as one self-contained HTML page (the fitted curve over the "
                  "measured points, its parameters, the peak)");
  cli->footer(
      "Model: X(N) = λN / (1 + σ(N−1) + κN(N−1)), fitted by nonlinear least squares (GSL).\n"
      "Example:\n"
      "  printf '1,980\\n2,1900\\n4,3500\\n8,5600\\n16,6900\\n' > tput.csv\n"
      "  chokepoint usl tput.csv          # lambda, sigma, kappa and the peak concurrency\n"
      "  chokepoint usl tput.csv -o usl.html   # the same, drawn on a page\n"
      "  chokepoint knee URL --usl        # measures the rows itself, then fits them\n"
      "See docs/usl.md.");
  return Subcommand{cli, [args] { return run_usl(*args); }};
}

}  // namespace chokepoint::app
