#include "whitening.h"

#include <Eigen/Dense>

#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

#include "augment.h"

namespace ts {

std::vector<float> whitening_filters(const float* images, int n, double eps) {
  constexpr int S = kCifarSide, plane = S * S, D = 12;
  if (n < 1) throw std::invalid_argument("whitening needs at least one image");
  Eigen::Matrix<double, D, D> cov = Eigen::Matrix<double, D, D>::Zero();
  Eigen::Matrix<double, D, Eigen::Dynamic> block(D, S - 1);
  for (int i = 0; i < n; ++i) {
    const float* img = images + int64_t(i) * kCifarImageBytes;
    for (int y = 0; y + 1 < S; ++y) {
      // One row of patches at a time: cov += P P^T.
      for (int x = 0; x + 1 < S; ++x)
        for (int c = 0; c < 3; ++c)
          for (int dy = 0; dy < 2; ++dy)
            for (int dx = 0; dx < 2; ++dx)
              block(c * 4 + dy * 2 + dx, x) = img[c * plane + (y + dy) * S + x + dx];
      cov.noalias() += block * block.transpose();
    }
  }
  cov /= double(n) * (S - 1) * (S - 1);
  const Eigen::SelfAdjointEigenSolver<Eigen::Matrix<double, D, D>> es(cov);
  if (es.info() != Eigen::Success) throw std::runtime_error("whitening: the eigen-decomposition failed");
  std::vector<float> w(size_t(2 * D * D));
  for (int i = 0; i < D; ++i) {
    const int k = D - 1 - i;  // Eigen's eigenvalues ascend; filter 0 gets the largest
    const double scale = 1.0 / std::sqrt(std::max(0.0, es.eigenvalues()(k)) + eps);
    for (int j = 0; j < D; ++j) {
      const double v = es.eigenvectors()(j, k) * scale;
      w[size_t(i * D + j)] = float(v);
      w[size_t((D + i) * D + j)] = float(-v);
    }
  }
  return w;
}

std::vector<float> whitening_filters_from(const Cifar10& data, int first_n, bool normalize,
                                          double eps) {
  if (first_n < 1 || first_n > data.size(Set::kTrain))
    throw std::invalid_argument("whitening needs " + std::to_string(first_n) + " training records; the set has " +
                                std::to_string(data.size(Set::kTrain)));
  std::vector<int32_t> idx(static_cast<size_t>(first_n));
  std::iota(idx.begin(), idx.end(), 0);
  std::vector<float> images(static_cast<size_t>(first_n) * kCifarImageBytes);
  std::vector<int32_t> labels(static_cast<size_t>(first_n));
  assemble_batch(data, Set::kTrain, idx.data(), first_n, Augment::kNone, 0, 0, images.data(),
                 labels.data(), normalize);
  return whitening_filters(images.data(), first_n, eps);
}

}  // namespace ts
