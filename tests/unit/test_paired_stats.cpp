// The sweep's paired verdicts (coordinator/sweep/paired_stats.h), on numbers worked by hand
// (python3's math module: logs, the sample standard deviation, the t table).
#include <catch2/catch.hpp>
#include <cmath>

#include "paired_stats.h"

TEST_CASE("Student's t quantile: the table for small df, the expansion beyond", "[sweep][paired]") {
  CHECK(ts::t_quantile_975(1) == Approx(12.7062));
  CHECK(ts::t_quantile_975(4) == Approx(2.7764));
  CHECK(ts::t_quantile_975(30) == Approx(2.0423));
  CHECK(ts::t_quantile_975(60) == Approx(2.0003).margin(1e-4));   // exact 2.000298
  CHECK(ts::t_quantile_975(120) == Approx(1.9799).margin(1e-4));  // exact 1.979930
  CHECK(ts::t_quantile_975(0) == ts::t_quantile_975(1));
}

TEST_CASE("a paired ratio skips failed rounds and gives the t interval of the mean log ratio",
          "[sweep][paired]") {
  // Round 4 failed for a (0): four pairs, ratios 1.10 1.05 1.20 1.08.
  const ts::PairedRatio r = ts::paired_ratio({110, 105, 120, 0, 108}, {100, 100, 100, 100, 100});
  CHECK(r.rounds == 4);
  CHECK(r.a_ahead == 4);
  CHECK(r.median == Approx(1.09));
  CHECK(r.geo_mean == Approx(1.1061060));
  CHECK(r.sd_log == Approx(0.0575882));
  CHECK(r.lo == Approx(1.0092539));
  CHECK(r.hi == Approx(1.2122524));
  CHECK(ts::verdict_of(r, 0.02) == ts::Verdict::real);
  // NaN (a round that did not run) is skipped like a failure; one pair has no interval.
  const ts::PairedRatio one = ts::paired_ratio({std::nan(""), 200}, {100, 100, 100});
  CHECK(one.rounds == 1);
  CHECK(one.geo_mean == Approx(2.0));
  CHECK(one.lo == 0);
  CHECK(ts::verdict_of(one, 0.02) == ts::Verdict::too_few);
  CHECK(ts::paired_ratio({}, {}).rounds == 0);
}

TEST_CASE("verdicts: real above 1, a tie within the tolerance, undecided otherwise", "[sweep][paired]") {
  const ts::PairedRatio tie = ts::paired_ratio({1005, 1003, 1007, 1004, 1006}, {1000, 1000, 1000, 1000, 1000});
  CHECK(tie.lo > 1);  // real, by a hair: real wins over tie
  CHECK(ts::verdict_of(tie, 0.02) == ts::Verdict::real);
  const ts::PairedRatio even = ts::paired_ratio({1005, 995, 1003, 998, 1001}, {1000, 1000, 1000, 1000, 1000});
  CHECK(even.lo < 1);
  CHECK(even.hi > 1);
  CHECK(ts::verdict_of(even, 0.02) == ts::Verdict::tie);
  CHECK(ts::verdict_of(even, 0.001) == ts::Verdict::undecided);
  const ts::PairedRatio open = ts::paired_ratio({1050, 960, 1020}, {1000, 1000, 1000});
  CHECK(ts::verdict_of(open, 0.02) == ts::Verdict::undecided);
  CHECK(std::string(ts::verdict_name(ts::Verdict::tie)) == "tie");
}

TEST_CASE("pairing by round sees through a drifting machine, and through a lucky range",
          "[sweep][paired]") {
  // The machine slows every round; b is 2% behind a in each. The ranges overlap (800..1000
  // against 785..980), the paired interval does not include 1.
  const ts::PairedRatio drift = ts::paired_ratio({1000, 900, 800}, {980, 880, 785});
  CHECK(drift.lo == Approx(1.0162039));
  CHECK(drift.hi == Approx(1.0253100));
  CHECK(ts::verdict_of(drift, 0.02) == ts::Verdict::real);
  // Disjoint ranges (1000..1020 against 900..990), but one round's ratio is 1.03 and the
  // others 1.11: three rounds cannot rule out a small margin.
  const ts::PairedRatio lucky = ts::paired_ratio({1000, 1010, 1020}, {900, 905, 990});
  CHECK(lucky.lo == Approx(0.9705123));
  CHECK(ts::verdict_of(lucky, 0.02) == ts::Verdict::undecided);
}

TEST_CASE("rounds needed to bring the interval within the tolerance at a pair's noise", "[sweep][paired]") {
  ts::PairedRatio r;
  r.sd_log = 0.05;
  // A ratio of 1 so far: a tie needs t(n-1) x 0.05 / sqrt(n) < ln 1.02: n = 27 (t(26) = 2.0555).
  r.geo_mean = 1;
  CHECK(ts::rounds_needed(r, 0.02) == 27);
  // A ratio of 1.05: real is nearer, needing a half-width under ln 1.05 = 0.0488:
  // t(5) x 0.05 / sqrt(6) = 0.0525, t(6) x 0.05 / sqrt(7) = 0.0462: n = 7.
  r.geo_mean = 1.05;
  CHECK(ts::rounds_needed(r, 0.02) == 7);
  r.sd_log = 0;
  CHECK(ts::rounds_needed(r, 0.02) == 2);
}
