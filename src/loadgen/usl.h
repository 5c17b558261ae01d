#pragma once
// The Universal Scalability Law (Gunther): throughput at concurrency N is
//   X(N) = lambda * N / (1 + sigma * (N - 1) + kappa * N * (N - 1))
// lambda is the throughput of one unit of concurrency, sigma the contention (serial fraction),
// kappa the coherency (crosstalk) cost. With kappa > 0 throughput peaks at N* =
// sqrt((1-sigma)/kappa) and falls beyond it.
//
// This file holds the model (predict, inverse, capacity planning) and its fit to measurements by
// nonlinear least squares (GSL's gsl_multifit_nlinear, trust region Levenberg-Marquardt). Pure
// functions, no shared state: safe to call from any thread.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace chokepoint::loadgen {

struct UslPoint {
  double concurrency = 0;
  double throughput = 0;
};

struct UslModel {
  double lambda = 0;
  double sigma = 0;
  double kappa = 0;

  // Predicted throughput at concurrency n (n >= 0).
  double predict(double n) const;
  // N* = sqrt((1 - sigma) / kappa), at least 1; +infinity when kappa == 0 (no retrograde region).
  double n_star() const;
  // The ceiling throughput: X(N*) when kappa > 0; lambda / sigma (the asymptote) when kappa == 0
  // and 0 < sigma < 1; lambda (X(1)) when kappa == 0 and sigma >= 1; +infinity when both are 0
  // (linear scaling).
  double x_max() const;
  // The smallest concurrency at which the model reaches `throughput`, from the full model
  // (kappa included): the smaller root of
  //   kappa*X*N^2 + (X*(sigma - kappa) - lambda)*N + X*(1 - sigma) = 0.
  // std::nullopt ("unreachable") when throughput > x_max() (no real root), or <= 0.
  std::optional<double> concurrency_for(double throughput) const;
};

struct UslFit {
  UslModel model;
  double r2 = 0;  // 1 - SS_res / SS_tot over the points
  std::size_t points = 0;
  std::size_t iterations = 0;
  // True when the unconstrained fit gave a negative sigma or kappa and that parameter was pinned
  // at 0 (the physically meaningful bound) and the rest refitted, or when its effect over the
  // measured range was negligible (below 1e-9 of the denominator) and it was set to 0.
  bool sigma_pinned = false;
  bool kappa_pinned = false;
};

// Parses "concurrency,throughput" rows. A leading UTF-8 byte order mark is skipped. The first
// non-blank line may be a header of two names (fields that do not start like a number); blank
// lines and lines starting with '#' are skipped. Any other row that is not two finite decimal
// numbers (no hex, inf or nan) with concurrency > 0 and throughput >= 0 is an error naming the
// line number and quoting at most 60 bytes of it, raw (util::print_error escapes it).
util::Result<std::vector<UslPoint>> parse_usl_csv(std::string_view text);

// Fits the USL to the points. Needs at least 3 distinct concurrency levels and some positive
// throughput; sigma and kappa are constrained to >= 0 (see UslFit).
util::Result<UslFit> fit_usl(const std::vector<UslPoint>& points);

// Reads a CSV of rows 'concurrency,throughput' (at most 1 MiB: a USL data set is tens of rows)
// and fits it. Errors name the file: unreadable, too large, a bad row, too few levels to fit.
struct UslFileFit {
  std::vector<UslPoint> points;
  UslFit fit;
};
util::Result<UslFileFit> fit_usl_file(const std::string& path);

// Capacity planning for a target aggregate rate spread over identical instances.
// Assumptions (stated in docs/usl.md): a load balancer spreads load evenly; instances share
// nothing, so each follows `per_instance` independently; each instance is run at no more than
// max_utilization * x_max (1.0 = at its peak; lower leaves headroom for bursts and failover).
struct InstancePlan {
  long instances = 0;                   // ceil(target / (max_utilization * x_max))
  double rate_per_instance = 0;         // target / instances
  double concurrency_per_instance = 0;  // concurrency_for(rate_per_instance)
};
util::Result<InstancePlan> instances_needed(double target_rate, const UslModel& per_instance,
                                            double max_utilization = 1.0);

}  // namespace chokepoint::loadgen
