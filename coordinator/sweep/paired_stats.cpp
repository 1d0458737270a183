#include "paired_stats.h"

#include <algorithm>
#include <cmath>

namespace ts {

double t_quantile_975(int df) {
  // Student's t, 0.975 quantile, df 1..30 (the standard table), then the Cornish-Fisher
  // expansion around the normal quantile, within 1e-4 of the exact value beyond 30.
  static const double table[] = {12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646,
                                 2.3060,  2.2622, 2.2281, 2.2010, 2.1788, 2.1604, 2.1448,
                                 2.1314,  2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796,
                                 2.0739,  2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484,
                                 2.0452,  2.0423};
  if (df < 1) df = 1;
  if (df <= 30) return table[df - 1];
  const double z = 1.959964, n = double(df);
  return z + (z * z * z + z) / (4 * n) + (5 * std::pow(z, 5) + 16 * z * z * z + 3 * z) / (96 * n * n);
}

PairedRatio paired_ratio(const std::vector<double>& a, const std::vector<double>& b) {
  PairedRatio r;
  std::vector<double> ratios, logs;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    if (!(a[i] > 0) || !(b[i] > 0)) continue;  // also NaN
    ratios.push_back(a[i] / b[i]);
    logs.push_back(std::log(a[i] / b[i]));
    r.a_ahead += a[i] > b[i];
  }
  r.rounds = int(ratios.size());
  if (ratios.empty()) return r;
  std::sort(ratios.begin(), ratios.end());
  const size_t n = ratios.size();
  r.median = n % 2 ? ratios[n / 2] : 0.5 * (ratios[n / 2 - 1] + ratios[n / 2]);
  double mean = 0;
  for (double x : logs) mean += x;
  mean /= double(n);
  r.geo_mean = std::exp(mean);
  if (n < 2) return r;
  double ss = 0;
  for (double x : logs) ss += (x - mean) * (x - mean);
  r.sd_log = std::sqrt(ss / double(n - 1));
  const double half = t_quantile_975(int(n) - 1) * r.sd_log / std::sqrt(double(n));
  r.lo = std::exp(mean - half);
  r.hi = std::exp(mean + half);
  return r;
}

Verdict verdict_of(const PairedRatio& r, double tolerance) {
  if (r.rounds < 2) return Verdict::too_few;
  if (r.lo > 1) return Verdict::real;
  if (r.lo >= 1 / (1 + tolerance) && r.hi <= 1 + tolerance) return Verdict::tie;
  return Verdict::undecided;
}

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::too_few: return "too_few";
    case Verdict::real: return "real";
    case Verdict::tie: return "tie";
    case Verdict::undecided: return "undecided";
  }
  return "?";
}

int rounds_needed(const PairedRatio& r, double tolerance) {
  const double w = std::log(1 + tolerance);
  if (w <= 0) return 1 << 20;
  // The nearer decision at this ratio: real (a half-width under |mean|) or a tie (under w -
  // |mean|), at the pair's noise so far.
  const double m = r.geo_mean > 0 ? std::fabs(std::log(r.geo_mean)) : 0;
  const double target = std::max(m, w - m);
  for (int n = 2; n < (1 << 20); n = n < 1000 ? n + 1 : n * 2)
    if (t_quantile_975(n - 1) * r.sd_log / std::sqrt(double(n)) < target) return n;
  return 1 << 20;
}

}  // namespace ts
