#include "loadgen/usl.h"

#include <gsl/gsl_blas.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_multifit_nlinear.h>
#include <gsl/gsl_vector.h>

#include <fmt/format.h>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <set>
#include <string_view>

#include "util/bounded_read.h"
#include "util/decimal.h"

namespace chokepoint::loadgen {

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
}

double UslModel::predict(double n) const {
  return lambda * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0));
}

double UslModel::n_star() const {
  if (kappa <= 0) return kInf;
  // Concurrency is at least 1: a fit whose peak falls below it (sigma >= 1, or a large kappa:
  // throughput already falls from the first added unit) peaks at 1.
  return std::max(1.0, std::sqrt(std::max(0.0, 1.0 - sigma) / kappa));
}

double UslModel::x_max() const {
  if (kappa > 0) return predict(n_star());
  // sigma >= 1: adding concurrency never helps (flat at 1, falling above), the ceiling is X(1).
  if (sigma >= 1) return lambda;
  if (sigma > 0) return lambda / sigma;
  return kInf;
}

std::optional<double> UslModel::concurrency_for(double x) const {
  if (!(x > 0) || lambda <= 0) return std::nullopt;
  // sigma >= 1: throughput never rises past X(1) = lambda, and below N = 1 the formula has a pole
  // (1 + sigma(N - 1) = 0 at N = 1 - 1/sigma). Up to lambda, one unit of concurrency busy x/lambda
  // of the time carries the rate.
  if (sigma >= 1) {
    if (x > x_max()) return std::nullopt;
    return x / lambda;
  }
  // Multiply X(N) = lambda*N / (1 + sigma(N-1) + kappa*N(N-1)) out to a quadratic in N.
  const double a = kappa * x;
  const double b = x * (sigma - kappa) - lambda;
  const double c = x * (1.0 - sigma);
  if (a == 0) {
    if (b >= 0) return std::nullopt;  // lambda <= x*sigma: above the asymptote lambda/sigma
    return -c / b;
  }
  double disc = b * b - 4 * a * c;
  // At the peak itself the discriminant is 0 up to rounding; a relative tolerance keeps
  // concurrency_for(x_max()) reachable.
  if (disc < 0 && disc > -1e-9 * b * b) disc = 0;
  if (disc < 0) return std::nullopt;  // above the peak X(N*)
  // The smaller root, computed in the numerically stable form (b < 0 here when reachable).
  const double q = -0.5 * (b - std::sqrt(disc));
  if (q <= 0) return std::nullopt;
  const double r1 = c / q;
  const double r2 = q / a;
  // With sigma > 1, c < 0 and one root is negative: the answer is the smaller positive root.
  if (r1 > 0 && r2 > 0) return std::min(r1, r2);
  if (r1 > 0) return r1;
  if (r2 > 0) return r2;
  return std::nullopt;
}

namespace {

// A header field is text, not something that starts like a number.
bool header_field(std::string_view s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return false;
  const char c = s[first];
  return !(std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '+');
}

// At most 60 bytes of a line for an error message (the message is escaped when printed).
std::string excerpt(std::string_view line) {
  constexpr std::size_t kMax = 60;
  if (line.size() <= kMax) return std::string(line);
  return fmt::format("{}... ({} bytes)", line.substr(0, kMax), line.size());
}

}  // namespace

util::Result<std::vector<UslPoint>> parse_usl_csv(std::string_view text) {
  std::vector<UslPoint> points;
  // A UTF-8 byte order mark (spreadsheets write one) is not part of the first row.
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  int line_no = 0;
  bool seen_content = false;
  const std::string hint =
      "each row must be 'concurrency,throughput' with concurrency > 0 and throughput >= 0, "
      "e.g. '8,1234.5'; an optional header line of two names may come first";
  while (!text.empty()) {
    const auto eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] == '#') continue;
    const bool is_first_content = !seen_content;
    seen_content = true;
    const auto comma = line.find(',');
    const bool two_fields =
        comma != std::string_view::npos && line.find(',', comma + 1) == std::string_view::npos;
    // Decimal only: strtod would take "0x10", "inf" and "1e5x"'s prefix.
    const auto nv = two_fields ? util::parse_decimal(line.substr(0, comma)) : std::nullopt;
    const auto xv = two_fields ? util::parse_decimal(line.substr(comma + 1)) : std::nullopt;
    const bool ok = nv && xv;
    const double n = nv.value_or(0), x = xv.value_or(0);
    if (!ok) {
      // A first line of two names is a header ("concurrency,throughput"). A line with another
      // number of fields, or one that starts like a number, is a mistake, never a header.
      if (is_first_content && two_fields && header_field(line.substr(0, comma)) &&
          header_field(line.substr(comma + 1)))
        continue;
      return util::Error{
          fmt::format("line {}: expected two numbers 'concurrency,throughput', got '{}'", line_no,
                      excerpt(line)),
          hint};
    }
    if (!(n > 0)) {
      return util::Error{fmt::format("line {}: concurrency must be > 0, got {}", line_no, n), hint};
    }
    if (x < 0) {
      return util::Error{fmt::format("line {}: throughput must be >= 0, got {}", line_no, x), hint};
    }
    points.push_back(UslPoint{n, x});
  }
  return points;
}

namespace {

// Which parameters the solver varies; pinned ones stay at 0.
struct FitData {
  const std::vector<UslPoint>* points;
  bool fit_sigma;
  bool fit_kappa;
};

UslModel unpack(const gsl_vector* p, const FitData& d) {
  UslModel m;
  std::size_t i = 0;
  m.lambda = gsl_vector_get(p, i++);
  m.sigma = d.fit_sigma ? gsl_vector_get(p, i++) : 0.0;
  m.kappa = d.fit_kappa ? gsl_vector_get(p, i++) : 0.0;
  return m;
}

int residuals(const gsl_vector* p, void* data, gsl_vector* f) {
  const auto& d = *static_cast<const FitData*>(data);
  const UslModel m = unpack(p, d);
  for (std::size_t i = 0; i < d.points->size(); ++i) {
    const UslPoint& pt = (*d.points)[i];
    gsl_vector_set(f, i, m.predict(pt.concurrency) - pt.throughput);
  }
  return GSL_SUCCESS;
}

int jacobian(const gsl_vector* p, void* data, gsl_matrix* J) {
  const auto& d = *static_cast<const FitData*>(data);
  const UslModel m = unpack(p, d);
  for (std::size_t i = 0; i < d.points->size(); ++i) {
    const double n = (*d.points)[i].concurrency;
    const double den = 1.0 + m.sigma * (n - 1.0) + m.kappa * n * (n - 1.0);
    const double x = m.lambda * n / den;
    std::size_t j = 0;
    gsl_matrix_set(J, i, j++, n / den);                                    // dX/dlambda
    if (d.fit_sigma) gsl_matrix_set(J, i, j++, -x * (n - 1.0) / den);      // dX/dsigma
    if (d.fit_kappa) gsl_matrix_set(J, i, j++, -x * n * (n - 1.0) / den);  // dX/dkappa
  }
  return GSL_SUCCESS;
}

struct SolveResult {
  UslModel model;
  std::size_t iterations = 0;
  double ss_res = kInf;
};

// Starting point: lambda from the best per-unit throughput at the lowest concurrency, then
// sigma and kappa from the linearised form  lambda*N/X - 1 = sigma*(N-1) + kappa*N*(N-1)
// by ordinary least squares (clamped at small positive values so the solver starts inside).
UslModel initial_guess(const std::vector<UslPoint>& pts) {
  const UslPoint* lowest = &pts[0];
  for (const auto& p : pts)
    if (p.concurrency < lowest->concurrency ||
        (p.concurrency == lowest->concurrency && p.throughput > lowest->throughput))
      lowest = &p;
  UslModel m;
  m.lambda = lowest->throughput / lowest->concurrency;
  if (m.lambda <= 0) {
    for (const auto& p : pts) m.lambda = std::max(m.lambda, p.throughput / p.concurrency);
  }
  double s11 = 0, s12 = 0, s22 = 0, t1 = 0, t2 = 0;
  for (const auto& p : pts) {
    if (p.throughput <= 0) continue;
    const double y = m.lambda * p.concurrency / p.throughput - 1.0;
    const double a = p.concurrency - 1.0;
    const double b = p.concurrency * (p.concurrency - 1.0);
    s11 += a * a;
    s12 += a * b;
    s22 += b * b;
    t1 += a * y;
    t2 += b * y;
  }
  const double det = s11 * s22 - s12 * s12;
  if (det > 0) {
    m.sigma = (t1 * s22 - t2 * s12) / det;
    m.kappa = (s11 * t2 - s12 * t1) / det;
  }
  m.sigma = std::clamp(m.sigma, 1e-4, 0.99);
  m.kappa = std::clamp(m.kappa, 1e-7, 1.0);
  return m;
}

util::Result<SolveResult> solve(const std::vector<UslPoint>& pts, const UslModel& start,
                                bool fit_sigma, bool fit_kappa) {
  FitData data{&pts, fit_sigma, fit_kappa};
  const std::size_t np = 1 + (fit_sigma ? 1 : 0) + (fit_kappa ? 1 : 0);
  const std::size_t n = pts.size();

  gsl_multifit_nlinear_fdf fdf{};
  fdf.f = residuals;
  fdf.df = jacobian;
  fdf.fvv = nullptr;
  fdf.n = n;
  fdf.p = np;
  fdf.params = &data;

  gsl_multifit_nlinear_parameters params = gsl_multifit_nlinear_default_parameters();
  // Parameters differ by orders of magnitude (lambda ~ 1e3, kappa ~ 1e-4): Marquardt scaling
  // makes the trust region invariant to that.
  params.scale = gsl_multifit_nlinear_scale_marquardt;
  gsl_multifit_nlinear_workspace* w =
      gsl_multifit_nlinear_alloc(gsl_multifit_nlinear_trust, &params, n, np);
  if (w == nullptr) return util::Error{"GSL could not allocate the solver workspace", ""};

  gsl_vector* x0 = gsl_vector_alloc(np);
  std::size_t i = 0;
  gsl_vector_set(x0, i++, start.lambda);
  if (fit_sigma) gsl_vector_set(x0, i++, start.sigma);
  if (fit_kappa) gsl_vector_set(x0, i++, start.kappa);

  gsl_set_error_handler_off();  // errors come back as status codes, never abort()
  int status = gsl_multifit_nlinear_init(x0, &fdf, w);
  int info = 0;
  if (status == GSL_SUCCESS) {
    status = gsl_multifit_nlinear_driver(500, 1e-12, 1e-12, 1e-12, nullptr, nullptr, &info, w);
  }
  SolveResult out;
  out.model = unpack(gsl_multifit_nlinear_position(w), data);
  out.iterations = gsl_multifit_nlinear_niter(w);
  double chisq = 0;
  gsl_blas_ddot(gsl_multifit_nlinear_residual(w), gsl_multifit_nlinear_residual(w), &chisq);
  out.ss_res = chisq;
  const char* why = gsl_strerror(status);
  gsl_multifit_nlinear_free(w);
  gsl_vector_free(x0);
  // GSL_EMAXITER still leaves the best point found; other failures mean no usable fit.
  if (status != GSL_SUCCESS && status != GSL_EMAXITER) {
    return util::Error{fmt::format("the USL fit did not converge: {}", why),
                       "check that throughput first rises with concurrency; the data may not "
                       "follow the USL shape"};
  }
  if (!std::isfinite(out.ss_res) || !std::isfinite(out.model.lambda)) {
    return util::Error{"the USL fit diverged", "check the data for outliers"};
  }
  return out;
}

}  // namespace

util::Result<UslFit> fit_usl(const std::vector<UslPoint>& points) {
  std::set<double> levels;
  double max_x = 0;
  for (const auto& p : points) {
    levels.insert(p.concurrency);
    max_x = std::max(max_x, p.throughput);
  }
  if (levels.size() < 3) {
    return util::Error{
        fmt::format("the USL fit needs at least 3 distinct concurrency levels, got {}",
                    levels.size()),
        "measure throughput at more concurrency levels, e.g. 1, 2, 4, 8, 16, 32"};
  }
  if (!(max_x > 0)) {
    return util::Error{"every throughput is 0: there is nothing to fit",
                       "check that the measurements were taken against a working service"};
  }

  const UslModel start = initial_guess(points);
  // Fit all three; if a parameter comes out negative (physically meaningless: negative
  // contention or coherency), pin it at 0 and refit the others. Try the single pins first and
  // keep the better one, then both.
  UslFit best;
  auto r = solve(points, start, true, true);
  if (!r) return r.error();
  SolveResult chosen = *r;
  bool sigma_pinned = false, kappa_pinned = false;
  if (chosen.model.sigma < 0 || chosen.model.kappa < 0) {
    std::optional<SolveResult> candidate;
    auto consider = [&](bool fs, bool fk) -> util::Result<void> {
      auto s = solve(points, start, fs, fk);
      if (!s) return s.error();
      if (s->model.sigma < 0 || s->model.kappa < 0) return {};
      if (!candidate || s->ss_res < candidate->ss_res) {
        candidate = *s;
        sigma_pinned = !fs;
        kappa_pinned = !fk;
      }
      return {};
    };
    if (auto e = consider(true, false); !e) return e.error();
    if (auto e = consider(false, true); !e) return e.error();
    if (!candidate) {
      if (auto e = consider(false, false); !e) return e.error();
    }
    if (!candidate) {
      return util::Error{"the USL fit gives a negative lambda",
                         "throughput should grow with concurrency at least at first"};
    }
    chosen = *candidate;
  }
  // A parameter whose whole effect over the measured range is below rounding noise is 0: linear
  // data should report kappa = 0 and N* = inf, not kappa = 1e-18 and N* = 1e9.
  double n_max = 0;
  for (const auto& p : points) n_max = std::max(n_max, p.concurrency);
  constexpr double kNegligible = 1e-9;
  if (chosen.model.kappa != 0 && chosen.model.kappa * n_max * (n_max - 1.0) < kNegligible) {
    chosen.model.kappa = 0;
    kappa_pinned = true;
  }
  if (chosen.model.sigma != 0 && chosen.model.sigma * (n_max - 1.0) < kNegligible) {
    chosen.model.sigma = 0;
    sigma_pinned = true;
  }
  if (chosen.model.lambda <= 0) {
    return util::Error{"the USL fit gives a non-positive lambda",
                       "throughput should grow with concurrency at least at first"};
  }

  double mean = 0;
  for (const auto& p : points) mean += p.throughput;
  mean /= static_cast<double>(points.size());
  double ss_tot = 0;
  for (const auto& p : points) ss_tot += (p.throughput - mean) * (p.throughput - mean);

  best.model = chosen.model;
  best.iterations = chosen.iterations;
  best.points = points.size();
  best.r2 = ss_tot > 0 ? 1.0 - chosen.ss_res / ss_tot : 1.0;
  best.sigma_pinned = sigma_pinned;
  best.kappa_pinned = kappa_pinned;
  return best;
}

util::Result<InstancePlan> instances_needed(double target_rate, const UslModel& m,
                                            double max_utilization) {
  if (!(target_rate > 0)) {
    return util::Error{fmt::format("target rate must be > 0, got {}", target_rate), ""};
  }
  if (!(max_utilization > 0 && max_utilization <= 1.0)) {
    return util::Error{fmt::format("max utilization must be in (0, 1], got {}", max_utilization),
                       ""};
  }
  const double cap = m.x_max();
  InstancePlan plan;
  if (std::isinf(cap)) {
    // Linear scaling has no ceiling: one instance suffices at the concurrency the model gives.
    plan.instances = 1;
  } else {
    const double usable = cap * max_utilization;
    if (!(usable > 0)) return util::Error{"the model predicts no throughput", ""};
    plan.instances = static_cast<long>(std::ceil(target_rate / usable - 1e-9));
    plan.instances = std::max(1L, plan.instances);
  }
  plan.rate_per_instance = target_rate / static_cast<double>(plan.instances);
  auto n = m.concurrency_for(plan.rate_per_instance);
  if (!n) {
    return util::Error{"the per-instance rate is unreachable under the model", ""};
  }
  plan.concurrency_per_instance = *n;
  return plan;
}

util::Result<UslFileFit> fit_usl_file(const std::string& path) {
  // The cap keeps /dev/zero or a wrong file from growing without end (docs/limits.md).
  constexpr std::size_t kMaxCsvBytes = std::size_t{1} << 20;
  auto text = util::read_file_bounded(path, kMaxCsvBytes, util::FileKind::kAnyReadable,
                                      "a CSV file with rows 'concurrency,throughput'");
  if (!text) return text.error();
  auto named = [&](util::Error e) {
    e.message = fmt::format("{}: {}", path, e.message);
    return e;
  };
  auto points = parse_usl_csv(*text);
  if (!points) return named(points.error());
  auto fit = fit_usl(*points);
  if (!fit) return named(fit.error());
  return UslFileFit{std::move(*points), *fit};
}

}  // namespace chokepoint::loadgen
