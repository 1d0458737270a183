// Test-time augmentation's views and scoring, and airbench's patch whitening. Tag [data].
#include <catch2/catch.hpp>

#include <Eigen/Dense>
#include <cmath>
#include <vector>

#include "random.h"
#include "tta.h"
#include "whitening.h"

namespace {
int reflect_index(int i) { return i < 0 ? -i : i > 31 ? 62 - i : i; }
}  // namespace

TEST_CASE("TTA level 2 is airbench's: 0.5 mirror(x) + 0.25 mirror(window 0,0) + 0.25 mirror(window 2,2)",
          "[data]") {
  CHECK(ts::tta_views(0).size() == 1);
  CHECK(ts::tta_views(1).size() == 2);
  const auto v = ts::tta_views(2);
  REQUIRE(v.size() == 6);
  double total = 0, plain = 0;
  for (const auto& view : v) {
    total += view.weight;
    if (view.dy == 0 && view.dx == 0) plain += view.weight;
  }
  CHECK(total == Approx(1.0));
  CHECK(plain == Approx(0.5));
  CHECK_THROWS_AS(ts::tta_views(3), std::invalid_argument);

  // The window at (0, 0) of x reflect-padded by one pixel: out (y, x) = x (reflect(y - 1),
  // reflect(x - 1)); mirrored: out (y, x) = window (y, 31 - x).
  ts::Rng rng(4);
  std::vector<float> img(3072);
  for (auto& p : img) p = float(rng.uniform());
  for (const auto& view : v) {
    std::vector<float> out(3072);
    ts::apply_tta_view(img.data(), 1, view, out.data());
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x) {
          const int wx = view.flip ? 31 - x : x;
          REQUIRE(out[size_t((c * 32 + y) * 32 + x)] ==
                  img[size_t((c * 32 + reflect_index(y + view.dy)) * 32 + reflect_index(wx + view.dx))]);
        }
  }
  const ts::TtaView window00 = v[2];
  CHECK(window00.dy == -1);  // padded (0, 0) is x (-1, -1)
}

TEST_CASE("score_logits: natural-log cross-entropy and first arg-max", "[data]") {
  const std::vector<float> logits = {1.f, 3.f, 3.f, 0.f, -1.f, 2.f};
  const std::vector<int32_t> labels = {2, 2};
  const ts::LogitScore s = ts::score_logits(logits.data(), labels.data(), 2, 3);
  CHECK(s.correct == 1);  // sample 0: the first maximum is class 1
  const double l0 = std::log(std::exp(1.0) + 2 * std::exp(3.0)) - 3.0;
  const double l1 = std::log(std::exp(0.0) + std::exp(-1.0) + std::exp(2.0)) - 2.0;
  CHECK(s.loss_sum == Approx(l0 + l1));
}

TEST_CASE("whitening filters decorrelate 2x2 patches: eigenvalues descending, negatives after",
          "[data]") {
  // Images with correlated patches: a smooth random field per image plus a channel mix.
  ts::Rng rng(8);
  const int n = 40;
  std::vector<float> images(size_t(n) * 3072);
  for (int i = 0; i < n; ++i)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) {
        const double base = std::sin(0.3 * x + i) + std::cos(0.2 * y - i) + 0.3 * rng.uniform();
        for (int c = 0; c < 3; ++c)
          images[size_t(i) * 3072 + size_t((c * 32 + y) * 32 + x)] =
              float(base * (1 + 0.2 * c) + 0.2 * rng.uniform());
      }
  const double eps = 5e-4;
  const std::vector<float> w = ts::whitening_filters(images.data(), n, eps);
  REQUIRE(w.size() == 24 * 12);
  for (int i = 0; i < 12; ++i)
    for (int j = 0; j < 12; ++j) CHECK(w[size_t((12 + i) * 12 + j)] == -w[size_t(i * 12 + j)]);
  // The filters applied to every patch: their covariance is diag(lambda / (lambda + eps)).
  Eigen::MatrixXd cov = Eigen::MatrixXd::Zero(12, 12);
  Eigen::VectorXd p(12), f(12);
  int64_t count = 0;
  for (int i = 0; i < n; ++i)
    for (int y = 0; y < 31; ++y)
      for (int x = 0; x < 31; ++x) {
        for (int c = 0; c < 3; ++c)
          for (int dy = 0; dy < 2; ++dy)
            for (int dx = 0; dx < 2; ++dx)
              p(c * 4 + dy * 2 + dx) = images[size_t(i) * 3072 + size_t((c * 32 + y + dy) * 32 + x + dx)];
        for (int k = 0; k < 12; ++k) {
          double s = 0;
          for (int j = 0; j < 12; ++j) s += double(w[size_t(k * 12 + j)]) * p(j);
          f(k) = s;
        }
        cov += f * f.transpose();
        ++count;
      }
  cov /= double(count);
  for (int a = 0; a < 12; ++a)
    for (int b = 0; b < 12; ++b)
      if (a != b) CHECK(std::fabs(cov(a, b)) < 1e-3);
  // Large eigenvalues whiten to ~1, and the order is descending: the first filter's output
  // variance is the closest to 1.
  CHECK(cov(0, 0) == Approx(1).epsilon(1e-3));
  for (int k = 0; k + 1 < 12; ++k) CHECK(cov(k, k) >= cov(k + 1, k + 1) - 1e-6);
  CHECK(cov(11, 11) < 0.99);  // the smallest eigenvalue is comparable with eps
}
