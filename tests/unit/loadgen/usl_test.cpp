#include "loadgen/usl.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>
#include <sstream>

namespace chokepoint::loadgen {
namespace {

std::string read_fixture(const std::string& name) {
  std::ifstream in(std::string(CHOKEPOINT_FIXTURES_DIR) + "/usl/" + name);
  EXPECT_TRUE(in) << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

UslFit fit_fixture(const std::string& name) {
  auto pts = parse_usl_csv(read_fixture(name));
  EXPECT_TRUE(pts.has_value());
  auto fit = fit_usl(*pts);
  EXPECT_TRUE(fit.has_value()) << fit.error().message;
  return *fit;
}

void expect_rel(double got, double want, double rel, const char* what) {
  EXPECT_NEAR(got, want, std::abs(want) * rel) << what;
}

TEST(Usl, CiscoGolden) {
  const UslFit f = fit_fixture("cisco.csv");
  EXPECT_EQ(f.points, 32u);
  expect_rel(f.model.sigma, 0.02671591, 1e-3, "sigma");
  expect_rel(f.model.kappa, 7.690945e-4, 1e-3, "kappa");
  expect_rel(f.model.lambda, 995.6486, 1e-4, "lambda");
  EXPECT_NEAR(f.model.n_star(), 35.57, 0.05);
  expect_rel(f.model.x_max(), 12341, 2e-3, "x_max");
  EXPECT_GT(f.r2, 0.99);
  EXPECT_FALSE(f.sigma_pinned);
  EXPECT_FALSE(f.kappa_pinned);
}

TEST(Usl, SpecSdm91Golden) {
  const UslFit f = fit_fixture("specsdm91.csv");
  expect_rel(f.model.sigma, 0.02773, 2e-3, "sigma");
  expect_rel(f.model.kappa, 1.0435e-4, 2e-3, "kappa");
  expect_rel(f.model.lambda, 89.99, 1e-3, "lambda");
  EXPECT_NEAR(f.model.n_star(), 96.5, 0.1);
  expect_rel(f.model.x_max(), 1884, 3e-3, "x_max");
}

TEST(Usl, RecoversKnownParametersFromNoisyData) {
  const UslModel truth{1000.0, 0.05, 0.001};
  std::mt19937_64 rng(1234);
  std::normal_distribution<double> noise(0.0, 0.01);  // 1% multiplicative noise
  std::vector<UslPoint> pts;
  for (int n = 1; n <= 64; ++n) {
    pts.push_back({static_cast<double>(n), truth.predict(n) * (1.0 + noise(rng))});
  }
  auto fit = fit_usl(pts);
  ASSERT_TRUE(fit.has_value()) << fit.error().message;
  expect_rel(fit->model.lambda, truth.lambda, 0.05, "lambda");
  expect_rel(fit->model.sigma, truth.sigma, 0.05, "sigma");
  expect_rel(fit->model.kappa, truth.kappa, 0.05, "kappa");
  expect_rel(fit->model.n_star(), truth.n_star(), 0.05, "n_star");
}

TEST(Usl, LinearDataGivesKappaZeroAndInfiniteNStar) {
  std::vector<UslPoint> pts;
  for (int n = 1; n <= 16; ++n) pts.push_back({static_cast<double>(n), 100.0 * n});
  auto fit = fit_usl(pts);
  ASSERT_TRUE(fit.has_value()) << fit.error().message;
  EXPECT_NEAR(fit->model.lambda, 100.0, 1e-3);
  EXPECT_EQ(fit->model.kappa, 0.0);
  EXPECT_NEAR(fit->model.sigma, 0.0, 1e-6);
  EXPECT_TRUE(std::isinf(fit->model.n_star()));
  EXPECT_TRUE(fit->kappa_pinned);
}

TEST(Usl, ContentionOnlyDataHasAsymptoteCeiling) {
  const UslModel truth{100.0, 0.1, 0.0};
  std::vector<UslPoint> pts;
  for (int n = 1; n <= 32; n *= 2) pts.push_back({static_cast<double>(n), truth.predict(n)});
  auto fit = fit_usl(pts);
  ASSERT_TRUE(fit.has_value()) << fit.error().message;
  EXPECT_EQ(fit->model.kappa, 0.0);
  EXPECT_NEAR(fit->model.sigma, 0.1, 1e-4);
  EXPECT_TRUE(std::isinf(fit->model.n_star()));
  EXPECT_NEAR(fit->model.x_max(), 1000.0, 1.0);  // lambda / sigma
}

TEST(Usl, DegenerateInputIsAClearError) {
  auto one = fit_usl({{1, 100}});
  ASSERT_FALSE(one.has_value());
  EXPECT_NE(one.error().message.find("at least 3"), std::string::npos);
  EXPECT_FALSE(one.error().hint.empty());
  auto zeros = fit_usl({{1, 0}, {2, 0}, {4, 0}});
  ASSERT_FALSE(zeros.has_value());
  EXPECT_NE(zeros.error().message.find("0"), std::string::npos);
  auto same_n = fit_usl({{4, 100}, {4, 110}, {4, 90}});
  EXPECT_FALSE(same_n.has_value());
}

TEST(Usl, CsvParsing) {
  auto with_header = parse_usl_csv("concurrency,throughput\n1,10\n\n# note\n2,19.5\r\n4,35\n");
  ASSERT_TRUE(with_header.has_value());
  ASSERT_EQ(with_header->size(), 3u);
  EXPECT_DOUBLE_EQ((*with_header)[1].throughput, 19.5);
  auto no_header = parse_usl_csv("1,10\n2,20\n");
  ASSERT_TRUE(no_header.has_value());
  EXPECT_EQ(no_header->size(), 2u);

  auto bad = parse_usl_csv("n,x\n1,10\n2,abc\n");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("line 3"), std::string::npos) << bad.error().message;
  EXPECT_FALSE(bad.error().hint.empty());
  auto negative = parse_usl_csv("1,10\n-2,20\n");
  ASSERT_FALSE(negative.has_value());
  EXPECT_NE(negative.error().message.find("line 2"), std::string::npos);
  auto neg_x = parse_usl_csv("1,10\n2,-20\n");
  ASSERT_FALSE(neg_x.has_value());
  EXPECT_NE(neg_x.error().message.find("throughput"), std::string::npos);
  auto three_cols = parse_usl_csv("1,10\n2,20,30\n");
  EXPECT_FALSE(three_cols.has_value());
  auto nan = parse_usl_csv("1,10\n2,nan\n");
  EXPECT_FALSE(nan.has_value());
}

// Regression (issue 18): a byte order mark or a 3-column first line made the first row a
// "header" and silently dropped it; strtod took "0x10", "inf" and "1e5x"'s prefix.
TEST(Usl, CsvFirstRowIsNeverSwallowed) {
  auto bom = parse_usl_csv(
      "\xEF\xBB\xBF"
      "1,10\n2,19\n4,35\n");
  ASSERT_TRUE(bom.has_value()) << bom.error().message;
  ASSERT_EQ(bom->size(), 3u);
  EXPECT_DOUBLE_EQ((*bom)[0].concurrency, 1);
  auto bom_header = parse_usl_csv(
      "\xEF\xBB\xBF"
      "concurrency,throughput\n1,10\n");
  ASSERT_TRUE(bom_header.has_value());
  EXPECT_EQ(bom_header->size(), 1u);

  for (const char* first : {"1,10,5\n", "n,x,extra\n", "1,abc\n", "1x,10\n", "-n,x\n"}) {
    auto r = parse_usl_csv(std::string(first) + "2,19\n4,35\n");
    ASSERT_FALSE(r.has_value()) << first;
    EXPECT_NE(r.error().message.find("line 1"), std::string::npos) << r.error().message;
  }
}

TEST(Usl, CsvNumbersAreDecimal) {
  for (const char* row : {"0x10,5", "2,0x10", "2,inf", "2,-inf", "2,infinity", "2,1e5x", "2,1p3",
                          "2,", ",5", "2, ", "2,1 2", "2,--1"}) {
    auto r = parse_usl_csv(std::string("1,10\n") + row + "\n");
    EXPECT_FALSE(r.has_value()) << row;
  }
  auto ok = parse_usl_csv(" 1 , 10 \n+2,1.5e1\n4,.5\n8,3.\n");
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  ASSERT_EQ(ok->size(), 4u);
  EXPECT_DOUBLE_EQ((*ok)[1].throughput, 15);
  EXPECT_DOUBLE_EQ((*ok)[2].throughput, 0.5);
}

TEST(Usl, CsvErrorQuotesAShortExcerpt) {
  const std::string junk(100000, 'z');
  auto r = parse_usl_csv("1,10\n" + junk + "\n");
  ASSERT_FALSE(r.has_value());
  EXPECT_LT(r.error().message.size(), 200u) << r.error().message;
  EXPECT_NE(r.error().message.find("line 2"), std::string::npos);
  EXPECT_NE(r.error().message.find("100000 bytes"), std::string::npos) << r.error().message;
}

TEST(Usl, InverseGivesBackConcurrencyBelowThePeak) {
  const UslModel m{995.65, 0.02672, 7.691e-4};
  for (double n : {1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 35.0}) {
    auto back = m.concurrency_for(m.predict(n));
    ASSERT_TRUE(back.has_value()) << n;
    EXPECT_NEAR(*back, n, 1e-6 * n) << n;
  }
  // Beyond N* the same throughput is reached earlier: the inverse gives the smaller N.
  auto early = m.concurrency_for(m.predict(60));
  ASSERT_TRUE(early.has_value());
  EXPECT_LT(*early, m.n_star());
  EXPECT_NEAR(m.predict(*early), m.predict(60), 1e-6 * m.predict(60));
  // At the peak and above it.
  auto at_peak = m.concurrency_for(m.x_max());
  ASSERT_TRUE(at_peak.has_value());
  EXPECT_NEAR(*at_peak, m.n_star(), 0.05 * m.n_star());
  EXPECT_FALSE(m.concurrency_for(m.x_max() * 1.01).has_value());
  EXPECT_FALSE(m.concurrency_for(0).has_value());
  // kappa = 0: unreachable at and above lambda / sigma.
  const UslModel amdahl{100, 0.1, 0};
  auto a = amdahl.concurrency_for(500);
  ASSERT_TRUE(a.has_value());
  EXPECT_NEAR(amdahl.predict(*a), 500, 1e-9);
  EXPECT_FALSE(amdahl.concurrency_for(1000).has_value());
}

// Regression (bench/usl/validate.sh): one instance capped by its CPU quota from one connection on
// gives flat, slightly falling data. The fit's sigma then exceeds 1, and N* and the ceiling used
// to come out as sqrt of a negative number: X_max -0.
TEST(Usl, FlatCappedDataPeaksAtOneWithItsThroughput) {
  std::vector<UslPoint> flat = {{1, 166.4}, {2, 164.5}, {4, 163.0}, {8, 160.5}, {16, 159.0}};
  auto fit = fit_usl(flat);
  ASSERT_TRUE(fit) << fit.error().message;
  const auto& m = fit->model;
  EXPECT_GE(m.n_star(), 1.0);
  EXPECT_NEAR(m.x_max(), 166, 3);
  auto plan = instances_needed(1000, m, 1.0);
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_EQ(plan->instances, 7);  // 1000 / ~166
  auto n = m.concurrency_for(plan->rate_per_instance);
  ASSERT_TRUE(n);
  EXPECT_GT(*n, 0);
  EXPECT_LE(*n, 1.0 + 1e-9);
  UslModel over{100, 1.2, 0};
  EXPECT_DOUBLE_EQ(over.x_max(), 100);
  UslModel steep{100, 0.5, 2.0};  // sqrt(0.5 / 2) = 0.5 < 1: the peak is at 1
  EXPECT_DOUBLE_EQ(steep.n_star(), 1.0);
  EXPECT_DOUBLE_EQ(steep.x_max(), 100);
}

TEST(Usl, InstancesNeeded) {
  const UslModel m{995.65, 0.02672, 7.691e-4};  // x_max ~ 12341
  auto one = instances_needed(10'000, m);
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->instances, 1);
  auto three = instances_needed(30'000, m);
  ASSERT_TRUE(three.has_value());
  EXPECT_EQ(three->instances, 3);
  EXPECT_NEAR(three->rate_per_instance, 10'000, 1e-9);
  EXPECT_NEAR(m.predict(three->concurrency_per_instance), 10'000, 1e-6);
  auto headroom = instances_needed(30'000, m, 0.5);  // plan each at ~6170 req/s
  ASSERT_TRUE(headroom.has_value());
  EXPECT_EQ(headroom->instances, 5);
  EXPECT_FALSE(instances_needed(-1, m).has_value());
  EXPECT_FALSE(instances_needed(100, m, 1.5).has_value());
}

}  // namespace
}  // namespace chokepoint::loadgen
