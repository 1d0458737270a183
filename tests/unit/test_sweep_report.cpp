// The sweep's results given recorded figures: aggregation, the summary's choice, and the CSV
// and JSON files (which must agree with each other).
#include <catch2/catch.hpp>
#include <sstream>

#include "autotune.h"
#include "json_io.h"
#include "sweep_report.h"

namespace {

ts::SweepPoint point(int index, const std::string& model, int procs, int threads,
                     const std::string& mode = "global") {
  ts::SweepPoint p;
  p.index = index;
  p.model = model;
  p.batch_mode = mode;
  p.subscription = "full";
  p.procs = procs;
  p.threads = threads;
  p.cores = procs * threads;
  p.global_batch = 128;
  p.steps = 100;
  p.warmup_steps = 5;
  return p;
}

ts::PointResult recorded(const ts::SweepPoint& p, std::vector<double> ips) {
  std::vector<ts::TrialFigures> trials;
  for (size_t r = 0; r < ips.size(); ++r) {
    ts::TrialFigures f;
    f.repeat = int(r);
    f.ok = ips[r] > 0;
    if (!f.ok) f.error = "exited with status 1";
    f.images_per_s = ips[r];
    f.shares.forward = 0.3;
    f.shares.backward = 0.5;
    f.shares.exchange = 0.1;
    f.shares.data_wait = 0.01;
    f.shares.update = 0.02;
    f.shares.sync_wait = 0.04;
    f.train_records = 45000;
    f.foreign_cpu_share = 0;
    for (int w = 0; w < p.procs; ++w) f.worker_cores.push_back(std::to_string(w));
    trials.push_back(f);
  }
  return ts::aggregate(p, trials);
}

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream s(line);
  std::string cell;
  while (std::getline(s, cell, ',')) out.push_back(cell);
  return out;
}

}  // namespace

TEST_CASE("a point's figures are the median and range of its successful repeats", "[sweep]") {
  const auto r = recorded(point(0, "seed_cnn", 2, 1), {900, 0, 1100, 1000});
  CHECK(r.ok_trials == 3);
  CHECK(r.ips_median == Approx(1000));
  CHECK(r.ips_min == Approx(900));
  CHECK(r.ips_max == Approx(1100));
  CHECK(r.spread() == Approx(0.2));
  CHECK(r.epoch_s == Approx(45.0));
  CHECK(r.bindings == "0|1");
  const auto even = recorded(point(0, "seed_cnn", 1, 2), {100, 300});
  CHECK(even.ips_median == Approx(200));
}

TEST_CASE("trials that shared the machine with other programs are flagged in the summary", "[sweep]") {
  auto quiet = recorded(point(0, "seed_cnn", 1, 2), {1000, 1010});
  auto busy = recorded(point(1, "seed_cnn", 2, 1), {700, 1200});
  CHECK(quiet.foreign_cpu_max == 0);
  CHECK_THAT(ts::sweep_summary_text({quiet}, ts::summarize({quiet}), {}),
             !Catch::Contains("WARNING"));
  busy.trials[0].foreign_cpu_share = 0.4;
  busy = ts::aggregate(busy.point, busy.trials);
  CHECK(busy.foreign_cpu_max == Approx(0.4));
  const std::vector<ts::PointResult> both = {quiet, busy};
  CHECK_THAT(ts::sweep_summary_text(both, ts::summarize(both), {}),
             Catch::Contains("WARNING: other programs used up to 40.0%"));
  CHECK_THAT(ts::sweep_csv(both), Catch::Contains(",0.4000,"));
}

TEST_CASE("with contended repeats, the summary also ranks by the quiet ones", "[sweep]") {
  // 2x1's median is dragged down by two contended repeats; its quiet one is the fastest.
  auto a = recorded(point(0, "seed_cnn", 1, 2), {8000, 8100, 7900});
  auto b = recorded(point(1, "seed_cnn", 2, 1), {8400, 4000, 5000});
  b.trials[1].foreign_cpu_share = 0.3;
  b.trials[2].foreign_cpu_share = 0.25;
  b = ts::aggregate(b.point, b.trials);
  CHECK(b.quiet_trials == 1);
  CHECK(b.quiet_median == Approx(8400));
  CHECK(a.quiet_trials == 3);
  const auto g = ts::summarize({a, b});
  REQUIRE(g.size() == 1);
  CHECK(g[0].best == 0);        // by median, as always
  CHECK(g[0].quiet_best == 1);  // by the quiet repeats
  CHECK(g[0].quiet_margin == Approx(8400.0 / 8000 - 1));
  CHECK_THAT(g[0].text, Catch::Contains("Counting only repeats with under 5% foreign CPU: 2x1x1 at 8400"));
  // All quiet: nothing to add.
  const auto calm = ts::summarize({a, recorded(point(1, "seed_cnn", 2, 1), {8400, 8300, 8500})});
  CHECK(calm[0].quiet_best == -1);
  CHECK_THAT(calm[0].text, !Catch::Contains("Counting only"));
}

TEST_CASE("the summary names the fastest split and says whether its paired margin is real", "[sweep]") {
  std::vector<ts::PointResult> results = {
      recorded(point(0, "seed_cnn", 1, 2), {3400, 3500, 3450}),
      recorded(point(1, "seed_cnn", 2, 1), {6800, 7000, 6900}),
      recorded(point(2, "tf_tutorial_cnn", 1, 2), {410, 400, 420}),
      recorded(point(3, "tf_tutorial_cnn", 2, 1), {405, 390, 415}),
  };
  const auto groups = ts::summarize(results);
  REQUIRE(groups.size() == 2);
  CHECK(groups[0].model == "seed_cnn");
  CHECK(groups[0].best == 1);
  CHECK(groups[0].runner_up == 0);
  CHECK(groups[0].margin == Approx(6900.0 / 3450 - 1));
  CHECK(groups[0].decisive);
  CHECK(groups[0].verdict == ts::Verdict::real);
  CHECK(groups[0].paired.rounds == 3);
  CHECK(groups[0].paired.a_ahead == 3);
  CHECK(groups[0].paired.lo > 1);
  CHECK_THAT(groups[0].text, Catch::Contains("best 2x1x1") && Catch::Contains("margin is real") &&
                                 Catch::Contains("Paired over 3 rounds: 2x1x1/1x1x2 = 2.000"));
  // Overlapping repeats: the higher median still wins, but the summary says it is noise.
  CHECK(groups[1].best == 2);
  CHECK(groups[1].runner_up == 3);
  CHECK_FALSE(groups[1].decisive);
  CHECK(groups[1].verdict == ts::Verdict::undecided);
  CHECK_THAT(groups[1].text, Catch::Contains("within noise"));
  CHECK_FALSE(ts::all_decided(groups));
  // Different winners, but tf_tutorial_cnn's within noise: no claim that the models differ.
  auto contrast = ts::model_contrast(results, groups);
  REQUIRE(contrast.size() == 1);
  CHECK_THAT(contrast[0], Catch::Contains("tf_tutorial_cnn's margin is not real by its paired interval"));
  CHECK_THAT(contrast[0], !Catch::Contains("favours"));
  // With clear repeats on both sides, the difference is stated.
  results[2] = recorded(point(2, "tf_tutorial_cnn", 1, 2), {500, 510, 505});
  contrast = ts::model_contrast(results, ts::summarize(results));
  REQUIRE(contrast.size() == 1);
  CHECK_THAT(contrast[0], Catch::Contains("seed_cnn favours processes") &&
                              Catch::Contains("tf_tutorial_cnn favours threads"));
}

TEST_CASE("the summary skips failed points and needs two repeats to call a margin real", "[sweep]") {
  std::vector<ts::PointResult> results = {
      recorded(point(0, "seed_cnn", 1, 2), {0, 0}),
      recorded(point(1, "seed_cnn", 2, 1), {5000}),
  };
  auto groups = ts::summarize(results);
  REQUIRE(groups.size() == 1);
  CHECK(groups[0].best == 1);
  CHECK(groups[0].runner_up == -1);
  CHECK_FALSE(groups[0].decisive);
  results.push_back(recorded(point(2, "seed_cnn", 2, 2), {4000}));
  groups = ts::summarize(results);
  CHECK(groups[0].runner_up == 2);
  CHECK_FALSE(groups[0].decisive);  // one repeat each: no spread known
  CHECK_THAT(groups[0].text, Catch::Contains("too few repeats"));
  CHECK(groups[0].verdict == ts::Verdict::too_few);
  // --autotune picks by the same rule.
  CHECK(ts::autotune_pick(results).best == 1);
  CHECK(ts::autotune_pick({}).best == -1);
}

TEST_CASE("a measured tie, a decision left open, and a machine too noisy to decide", "[sweep][paired]") {
  // Within +-2% of each other in every round: either will do, and --until-clear stops.
  std::vector<ts::PointResult> tie = {recorded(point(0, "seed_cnn", 1, 2), {1005, 995, 1003, 998, 1001}),
                                      recorded(point(1, "seed_cnn", 2, 1), {1000, 1000, 1000, 1000, 1000})};
  auto g = ts::summarize(tie);
  REQUIRE(g.size() == 1);
  CHECK(g[0].verdict == ts::Verdict::tie);
  CHECK_THAT(g[0].text, Catch::Contains("either will do") && Catch::Contains("within +-2.0%"));
  CHECK(ts::all_decided(g));
  // A tighter tolerance turns the same figures into an open question, with the rounds it needs.
  g = ts::summarize(tie, 0.004);
  CHECK(g[0].verdict == ts::Verdict::undecided);
  CHECK_FALSE(g[0].too_noisy);
  CHECK_THAT(g[0].text, Catch::Contains("rounds in all would decide it (--until-clear)"));
  CHECK_FALSE(ts::all_decided(g));
  // Rounds scattering by +-10%: no affordable number of rounds decides a 2% question.
  std::vector<ts::PointResult> noisy = {recorded(point(0, "seed_cnn", 1, 2), {1100, 900, 1150, 880, 1010}),
                                        recorded(point(1, "seed_cnn", 2, 1), {1000, 1000, 1000, 1000, 1000})};
  g = ts::summarize(noisy);
  CHECK(g[0].verdict == ts::Verdict::undecided);
  CHECK(g[0].too_noisy);
  CHECK_THAT(g[0].text, Catch::Contains("too noisy to decide"));
  // 1x2's rounds: mean 1008, sample standard deviation 119.0: 11.8%; 2x1's: none.
  CHECK(noisy[0].cv() == Approx(0.118093).epsilon(1e-4));
  CHECK_THAT(g[0].text, Catch::Contains("Rounds of one split scatter by 11.8% (1x1x2) and 0.0% (2x1x1)"));
  // A group with one point has nothing to decide.
  CHECK(ts::all_decided(ts::summarize({recorded(point(0, "seed_cnn", 1, 2), {1000})})));
}

TEST_CASE("the sweep CSV and JSON carry the same figures for every point", "[sweep]") {
  std::vector<ts::PointResult> results = {
      recorded(point(0, "seed_cnn", 1, 2), {3412.34, 3500.06, 3450.55}),
      recorded(point(1, "seed_cnn", 2, 1, "per_worker"), {6800, 7000.25, 6900}),
  };
  const auto groups = ts::summarize(results);
  ts::SweepFacts facts;
  facts.cpu_model = "Test CPU, 2 cores";
  facts.online_cores = 2;
  facts.onednn = "2.7.3";
  const std::string csv = ts::sweep_csv(results);
  const ts::JsonNode j =
      ts::parse_json(ts::sweep_json(facts, ts::SweepOptions{}, results, groups, {}), "sweep.json");
  CHECK(j["machine"]["cpu_model"].str() == "Test CPU, 2 cores");
  CHECK(j["versions"]["onednn"].str() == "2.7.3");
  std::stringstream lines(csv);
  std::string header, line;
  std::getline(lines, header);
  const auto cols = split_csv_line(header);
  auto col = [&](const std::string& name) {
    for (size_t i = 0; i < cols.size(); ++i)
      if (cols[i] == name) return i;
    FAIL("no CSV column " << name);
    return size_t(0);
  };
  const ts::JsonNode points = j["points"];
  REQUIRE(points.size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    REQUIRE(std::getline(lines, line));
    const auto cells = split_csv_line(line);
    REQUIRE(cells.size() == cols.size());
    const ts::JsonNode p = points[i];
    INFO("point " << i << ": " << line);
    CHECK(cells[col("model")] == p["model"].str());
    CHECK(cells[col("batch_mode")] == p["batch_mode"].str());
    CHECK(std::stoi(cells[col("procs")]) == p["procs"].num());
    CHECK(std::stoi(cells[col("threads")]) == p["threads"].num());
    CHECK(std::stod(cells[col("images_per_s_median")]) == p["images_per_s"]["median"].num());
    CHECK(std::stod(cells[col("images_per_s_min")]) == p["images_per_s"]["min"].num());
    CHECK(std::stod(cells[col("images_per_s_max")]) == p["images_per_s"]["max"].num());
    CHECK(std::stod(cells[col("epoch_s")]) == p["epoch_s"].num());
    CHECK(std::stod(cells[col("backward_share")]) == p["shares"]["backward"].num());
    CHECK(std::stod(cells[col("sync_wait_share")]) == p["shares"]["sync_wait"].num());
    CHECK(cells[col("bindings")] == p["bindings"].str());
    CHECK(std::stod(cells[col("ratio_vs_best")]) == p["ratio_vs_best"]["geo_mean"].num());
    CHECK(std::stod(cells[col("ratio_vs_best_lo")]) == p["ratio_vs_best"]["lo"].num());
    CHECK(std::stod(cells[col("ratio_vs_best_hi")]) == p["ratio_vs_best"]["hi"].num());
    CHECK(std::stod(cells[col("cv")]) == p["cv"].num());
    CHECK(p["trials"].size() == 3);
  }
  CHECK(points[0]["images_per_s"]["median"].num() == Approx(3450.6));
  CHECK_FALSE(std::getline(lines, line));
  // One summary per model and batch mode.
  REQUIRE(j["summary"].size() == 2);
  CHECK(j["summary"][0]["best"].num() == 0);
  CHECK(j["summary"][1]["best"].num() == 1);
}

TEST_CASE("a run report's timed window becomes a trial's figures, and a failed run says why", "[sweep]") {
  const std::string good = R"({"status": "completed",
    "config": {"train_records": 45000}, "split": {"oversubscribed": false},
    "workers": [{"cores": "0"}, {"cores": "1"}],
    "timed": {"steps": 10, "seconds": 0.5, "images_per_s": 2560,
              "shares": {"data_wait": 0.01, "forward": 0.3, "backward": 0.5, "exchange": 0.1, "update": 0.02,
                         "sync_wait": 0.03}}})";
  const ts::TrialFigures f = ts::figures_from_report(good);
  CHECK(f.ok);
  CHECK(f.images_per_s == 2560);
  CHECK(f.shares.backward == 0.5);
  CHECK(f.shares.sync_wait == 0.03);
  CHECK(f.worker_cores == std::vector<std::string>{"0", "1"});
  const ts::TrialFigures failed = ts::figures_from_report(R"({"status": "failed", "error": "worker 1 died"})");
  CHECK_FALSE(failed.ok);
  CHECK_THAT(failed.error, Catch::Contains("worker 1 died"));
  CHECK_FALSE(ts::figures_from_report("{not json").ok);
  CHECK_FALSE(ts::figures_from_report(R"({"status": "completed", "timed": {"steps": 0}})").ok);
  // A figure missing, or of the wrong type: the error names the report and the key.
  std::string no_update = good;
  no_update.replace(no_update.find(R"("update": 0.02,)"), std::string(R"("update": 0.02,)").size(), "");
  const ts::TrialFigures missing = ts::figures_from_report(no_update, "trials/p0_r1.json");
  CHECK_FALSE(missing.ok);
  CHECK(missing.error == "unreadable report: trials/p0_r1.json: no key 'timed.shares.update'");
  std::string text_cores = good;
  text_cores.replace(text_cores.find(R"({"cores": "1"})"), std::string(R"({"cores": "1"})").size(),
                     R"({"cores": 1})");
  const ts::TrialFigures wrong = ts::figures_from_report(text_cores, "trials/p0_r1.json");
  CHECK_FALSE(wrong.ok);
  CHECK(wrong.error == "unreadable report: trials/p0_r1.json: 'workers[1].cores' is a number, not a string");
}

TEST_CASE("a round in which other programs took the CPU is left out of the paired verdict",
          "[sweep][paired]") {
  // The first two rounds were contended and hit 1x2 (a 2-thread team) harder: with them the
  // pair looks 9% apart for real; the three quiet rounds alone cannot tell.
  ts::PointResult a = recorded(point(0, "airbench94@bf16", 2, 1), {898, 909, 1005, 1010, 1001});
  ts::PointResult b = recorded(point(1, "airbench94@bf16", 1, 2), {805, 829, 961, 862, 962});
  for (ts::PointResult* p : {&a, &b})
    for (int r = 0; r < 2; ++r) p->trials[size_t(r)].foreign_cpu_share = 0.14;
  a = ts::aggregate(a.point, a.trials);
  b = ts::aggregate(b.point, b.trials);
  CHECK(ts::paired_ratio(a.by_round(), b.by_round()).lo > 1);  // every round: "real"
  int left_out = -1;
  const ts::PairedRatio quiet = ts::paired_quiet(a, b, &left_out);
  CHECK(left_out == 2);
  CHECK(quiet.rounds == 3);
  CHECK(quiet.lo < 1);
  const auto g = ts::summarize({a, b});
  REQUIRE(g.size() == 1);
  CHECK(g[0].contended_rounds == 2);
  CHECK(g[0].verdict == ts::Verdict::undecided);
  CHECK_THAT(g[0].text, Catch::Contains("Paired over 3 rounds (2 contended rounds left out)"));
  // One contended trial is enough to leave its round out.
  a.trials[2].foreign_cpu_share = 0.3;
  a = ts::aggregate(a.point, a.trials);
  CHECK(ts::paired_quiet(a, b, &left_out).rounds == 2);
  CHECK(left_out == 3);
}
