// Paired comparisons of two splits over interleaved rounds. Each round runs every split once,
// minutes apart at most, so the ratio of two splits' images/s within one round cancels what
// drifts slowly (other tenants, the host's clock, thermal state). A verdict is drawn from the
// rounds' ratios, not from how the splits' ranges overlap: the 95% Student-t interval of the
// mean log ratio, exponentiated (a geometric-mean ratio). It assumes that the rounds' log ratios
// scatter roughly normally around one true ratio, nothing about the speeds themselves. Chosen
// over an exact sign or Wilcoxon test because with 5 rounds those cannot reach 95% (their
// smallest two-sided p is 1/16), and over a bootstrap because a bootstrap of 5 rounds gives
// intervals too narrow; the t interval narrows honestly as rounds are added.
// No processes here: everything is tested on recorded figures.
#pragma once
#include <string>
#include <vector>

namespace ts {

// Per-round images/s of two splits; a round where either failed (or that the caller leaves
// out) is NaN or <= 0 and skipped.
struct PairedRatio {
  int rounds = 0;           // rounds where both ran
  double median = 0;        // median of the per-round ratios a/b
  double geo_mean = 0;      // exp(mean of log(a/b))
  double lo = 0, hi = 0;    // the 95% interval of the geometric-mean ratio; 0 with < 2 rounds
  double sd_log = 0;        // per-round standard deviation of log(a/b): the pair's noise
  int a_ahead = 0;          // rounds where a beat b
};

// a and b indexed by round.
PairedRatio paired_ratio(const std::vector<double>& a, const std::vector<double>& b);

// The two-sided 95% quantile of Student's t with df degrees of freedom (df >= 1).
double t_quantile_975(int df);

// What a paired comparison of the best split against the runner-up allows one to say.
enum class Verdict {
  too_few,    // fewer than 2 paired rounds
  real,       // the interval lies above 1: the best is faster
  tie,        // the interval lies within [1/(1+tol), 1+tol]: either will do, measured
  undecided,  // neither: more rounds would tell
};

Verdict verdict_of(const PairedRatio& r, double tolerance);
const char* verdict_name(Verdict v);  // "too_few", "real", "tie", "undecided"

// About how many rounds in all would decide the pair at its noise and ratio so far: the
// fewest n >= 2 whose t interval's half-width (in logs) is under the nearer decision's
// distance, |log ratio| for real or log(1 + tol) - |log ratio| for a tie.
int rounds_needed(const PairedRatio& r, double tolerance);

}  // namespace ts
