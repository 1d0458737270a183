// airbench's patch whitening: the weights of its first convolution (2x2, 3 -> 24, frozen),
// computed from training images instead of trained. With every 2x2x3 patch p of the images
// flattened as (c, y, x) -> c*4 + y*2 + x, the uncentred covariance C = sum p p^T / N_patches
// (12x12, in double) has eigenpairs (lambda_i, v_i), lambda descending; filter i < 12 is
// v_i / sqrt(lambda_i + eps) and filter 12 + i its negative, so the layer's outputs are the
// patches in C's eigenbasis, each of variance lambda / (lambda + eps), in both signs (the GELU
// after it keeps either half).
#pragma once
#include <vector>

#include "cifar10.h"

namespace ts {

// From n images [n, 3, 32, 32] (as the network sees them: normalized when the run
// normalizes): 24 x 3 x 2 x 2 floats in [out, in, kh, kw] order (network.h's layout).
std::vector<float> whitening_filters(const float* images, int n, double eps = 5e-4);

// airbench's choice: the first `first_n` training records, assembled without augmentation
// (normalized when `normalize`). Throws std::invalid_argument when the set has fewer.
std::vector<float> whitening_filters_from(const Cifar10& data, int first_n, bool normalize,
                                          double eps = 5e-4);

}  // namespace ts
