#include "sweep_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

#include "json_io.h"
#include "step_timing.h"

namespace ts {

namespace {

double median_of(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string fmt(const char* f, double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, x);
  return buf;
}

std::string pct(double x) { return fmt("%.1f%%", 100 * x); }

// The files' precision. The JSON holds these rounded values and the CSV prints them, so the
// two agree digit for digit.
double r1(double x) { return std::round(x * 10) / 10; }
double r3(double x) { return std::round(x * 1000) / 1000; }
double r4(double x) { return std::round(x * 10000) / 10000; }

// Foreign CPU share by round; -1 (unknown) where the round's trial failed or did not run.
std::vector<double> foreign_by_round(const PointResult& r) {
  std::vector<double> out;
  for (const TrialFigures& t : r.trials) {
    if (t.repeat < 0) continue;
    if (size_t(t.repeat) >= out.size()) out.resize(size_t(t.repeat) + 1, -1);
    if (t.ok) out[size_t(t.repeat)] = t.foreign_cpu_share;
  }
  return out;
}

}  // namespace

PairedRatio paired_quiet(const PointResult& a, const PointResult& b, int* left_out) {
  std::vector<double> va = a.by_round(), vb = b.by_round();
  const std::vector<double> fa = foreign_by_round(a), fb = foreign_by_round(b);
  int dropped = 0;
  for (size_t r = 0; r < std::min(va.size(), vb.size()); ++r) {
    const bool contended = (r < fa.size() && fa[r] > 0.05) || (r < fb.size() && fb[r] > 0.05);
    if (contended && va[r] > 0 && vb[r] > 0) {
      va[r] = vb[r] = std::nan("");
      ++dropped;
    }
  }
  if (left_out) *left_out = dropped;
  return paired_ratio(va, vb);
}

namespace {

// The best point of r's model and batch mode as summarize ranks them (the top two by median
// images/s, ties in the plan's order, then ordered by their paired rounds); nullptr when none ran.
const PointResult* group_best(const std::vector<PointResult>& results, const PointResult& r) {
  const PointResult *best = nullptr, *second = nullptr;
  for (const PointResult& x : results) {
    if (x.point.model != r.point.model || x.point.batch_mode != r.point.batch_mode || x.ok_trials == 0) continue;
    if (!best || x.ips_median > best->ips_median) {
      second = best;
      best = &x;
    } else if (!second || x.ips_median > second->ips_median) {
      second = &x;
    }
  }
  if (best && second) {
    const PairedRatio top = paired_quiet(*best, *second);
    if (top.rounds >= 2 && top.geo_mean < 1) return second;
  }
  return best;
}

// r against its group's best, round by round (the best against itself: ratio 1, no interval).
PairedRatio vs_best(const std::vector<PointResult>& results, const PointResult& r) {
  const PointResult* best = group_best(results, r);
  if (!best || r.ok_trials == 0) return PairedRatio{};
  return paired_quiet(r, *best);
}

}  // namespace

TrialFigures figures_from_report(const std::string& text, const std::string& name) {
  TrialFigures f;
  try {
    const JsonNode r = parse_json(text, name);
    if (r["status"].str() != "completed") {
      f.error = "the run " + r["status"].str() + (r.has("error") ? ": " + r["error"].str() : "");
      return f;
    }
    if (!r.has("timed") || r["timed"]["steps"].num() < 1) {
      f.error = "the report has no timed steps (warm-up as long as the run?)";
      return f;
    }
    const JsonNode t = r["timed"];
    f.images_per_s = t["images_per_s"].num();
    f.seconds = t["seconds"].num();
    const JsonNode s = t["shares"];
    f.shares.data_wait = s["data_wait"].num();
    f.shares.forward = s["forward"].num();
    f.shares.backward = s["backward"].num();
    f.shares.exchange = s["exchange"].num();
    f.shares.update = s["update"].num();
    f.shares.sync_wait = s["sync_wait"].num();
    f.train_records = int(r["config"]["train_records"].num());
    f.oversubscribed = r["split"]["oversubscribed"].boolean();
    for (const JsonNode& w : r["workers"].items()) f.worker_cores.push_back(w["cores"].str());
    f.ok = f.images_per_s > 0;
    if (!f.ok) f.error = "the timed window measured no throughput";
  } catch (const std::exception& e) {
    f.ok = false;
    f.error = std::string("unreadable report: ") + e.what();
  }
  return f;
}

double PointResult::spread() const {
  return ok_trials >= 2 && ips_median > 0 ? (ips_max - ips_min) / ips_median : 0.0;
}

double PointResult::cv() const {
  std::vector<double> v;
  for (const TrialFigures& t : trials)
    if (t.ok) v.push_back(t.images_per_s);
  if (v.size() < 2) return 0;
  double mean = 0, ss = 0;
  for (double x : v) mean += x;
  mean /= double(v.size());
  for (double x : v) ss += (x - mean) * (x - mean);
  return mean > 0 ? std::sqrt(ss / double(v.size() - 1)) / mean : 0;
}

std::vector<double> PointResult::by_round() const {
  std::vector<double> out;
  for (const TrialFigures& t : trials) {
    if (t.repeat < 0) continue;
    if (size_t(t.repeat) >= out.size()) out.resize(size_t(t.repeat) + 1, std::nan(""));
    if (t.ok) out[size_t(t.repeat)] = t.images_per_s;
  }
  return out;
}

PointResult aggregate(const SweepPoint& p, std::vector<TrialFigures> trials) {
  PointResult r;
  r.point = p;
  std::sort(trials.begin(), trials.end(),
            [](const TrialFigures& a, const TrialFigures& b) { return a.repeat < b.repeat; });
  r.trials = std::move(trials);
  std::vector<double> ips;
  for (const TrialFigures& t : r.trials) {
    if (!t.ok) continue;
    ips.push_back(t.images_per_s);
    r.foreign_cpu_max = std::max(r.foreign_cpu_max, t.foreign_cpu_share);
    r.steal_max = std::max(r.steal_max, t.steal_share);
    r.shares += t.shares;
    if (r.bindings.empty()) {
      for (size_t w = 0; w < t.worker_cores.size(); ++w)
        r.bindings += (w ? "|" : "") + t.worker_cores[w];
    }
  }
  r.ok_trials = int(ips.size());
  if (ips.empty()) return r;
  std::vector<double> quiet;
  for (const TrialFigures& t : r.trials)
    if (t.ok && t.foreign_cpu_share >= 0 && t.foreign_cpu_share < 0.05) quiet.push_back(t.images_per_s);
  r.quiet_trials = int(quiet.size());
  r.quiet_median = median_of(quiet);
  r.shares /= double(ips.size());
  r.ips_median = median_of(ips);
  r.ips_min = *std::min_element(ips.begin(), ips.end());
  r.ips_max = *std::max_element(ips.begin(), ips.end());
  int records = 45000;
  for (const TrialFigures& t : r.trials)
    if (t.ok && t.train_records > 0) records = t.train_records;
  r.epoch_s = double(records) / r.ips_median;
  return r;
}

std::vector<GroupSummary> summarize(const std::vector<PointResult>& results, double tolerance) {
  std::vector<GroupSummary> groups;
  std::map<std::pair<std::string, std::string>, size_t> where;
  for (const PointResult& r : results) {
    const auto key = std::make_pair(r.point.model, r.point.batch_mode);
    if (!where.count(key)) {
      where[key] = groups.size();
      GroupSummary g;
      g.model = r.point.model;
      g.batch_mode = r.point.batch_mode;
      groups.push_back(g);
    }
  }
  for (GroupSummary& g : groups) {
    // Ranked by median images/s; ties keep the plan's order.
    std::vector<const PointResult*> ranked;
    for (const PointResult& r : results)
      if (r.point.model == g.model && r.point.batch_mode == g.batch_mode && r.ok_trials > 0)
        ranked.push_back(&r);
    std::stable_sort(ranked.begin(), ranked.end(), [](const PointResult* a, const PointResult* b) {
      return a->ips_median > b->ips_median;
    });
    const std::string head = g.model + ", " + (g.batch_mode == "global" ? "global batch fixed" : "per-worker batch fixed") + ": ";
    if (ranked.empty()) {
      g.text = head + "no point ran successfully.";
      continue;
    }
    // The top two by median, then in the order their paired rounds give: the rounds' ratio
    // cancels what the medians of a few rounds do not (a drifting machine).
    if (ranked.size() >= 2) {
      const PairedRatio top = paired_quiet(*ranked[0], *ranked[1]);
      if (top.rounds >= 2 && top.geo_mean < 1) std::swap(ranked[0], ranked[1]);
    }
    const PointResult& best = *ranked[0];
    g.best = best.point.index;
    std::ostringstream t;
    t << head << "best " << best.point.label() << " at " << fmt("%.0f", best.ips_median)
      << " img/s (" << fmt("%.1f", best.epoch_s) << " s/epoch)";
    if (ranked.size() == 1) {
      t << "; no other point to compare with.";
      g.text = t.str();
      continue;
    }
    const PointResult& second = *ranked[1];
    g.runner_up = second.point.index;
    g.margin = second.ips_median > 0 ? best.ips_median / second.ips_median - 1 : 0;
    g.spread = std::max(best.spread(), second.spread());
    g.paired = paired_quiet(best, second, &g.contended_rounds);
    g.verdict = verdict_of(g.paired, tolerance);
    g.decisive = g.verdict == Verdict::real;
    const PairedRatio& pr = g.paired;
    t << ", " << (g.margin >= 0 ? pct(g.margin) + " ahead of " : pct(-g.margin) + " behind ")
      << second.point.label() << " (" << fmt("%.0f", second.ips_median) << " img/s) by median"
      << (g.margin < 0 ? " but ahead round by round" : "");
    const std::string dropped =
        g.contended_rounds > 0 ? " (" + std::to_string(g.contended_rounds) + " contended round" +
                                     (g.contended_rounds > 1 ? "s" : "") + " left out)"
                               : "";
    if (g.verdict == Verdict::too_few) {
      t << "; too few repeats (rounds with both" << (g.contended_rounds > 0 ? ", quiet" : "") << ")"
        << dropped << " to tell the margin from noise.";
    } else {
      t << ". Paired over " << pr.rounds << " rounds" << dropped << ": " << best.point.label() << "/"
        << second.point.label() << " = " << fmt("%.3f", pr.geo_mean) << " (95% interval "
        << fmt("%.3f", pr.lo) << ".." << fmt("%.3f", pr.hi) << "), ahead in " << pr.a_ahead
        << " of " << pr.rounds << "; ";
      const bool contended = best.foreign_cpu_max > 0.05 || second.foreign_cpu_max > 0.05;
      if (g.verdict == Verdict::real) {
        t << "the margin is real (the interval lies above 1).";
      } else if (g.verdict == Verdict::tie) {
        t << "either will do: the interval lies within +-" << pct(tolerance)
          << ", a measured tie.";
      } else {
        const int need = rounds_needed(pr, tolerance);
        g.too_noisy = need > 30 || contended;
        t << "the margin is within noise (the interval includes 1 and is wider than +-"
          << pct(tolerance) << "). ";
        if (g.too_noisy)
          t << "The machine was too noisy to decide: a round's ratio scatters by +-"
            << pct(std::exp(pr.sd_log) - 1)
            << (contended ? ", other programs took over 5% of the CPU in some trials" : "")
            << " (about " << need << " rounds would be needed); rerun on a quiet machine.";
        else
          t << "About " << need << " rounds in all would decide it (--until-clear).";
      }
      // The run-to-run spread of each split alone: the noise of a repeated identical run.
      if (best.ok_trials >= 2 && second.ok_trials >= 2)
        t << " Rounds of one split scatter by " << pct(best.cv()) << " (" << best.point.label()
          << ") and " << pct(second.cv()) << " (" << second.point.label() << ") (coefficient of "
          "variation).";
    }
    // On a shared machine, the ranking by the uncontended repeats alone, when it can be had.
    bool contended = false, all_quiet = true;
    for (const PointResult* p : ranked) {
      contended = contended || p->quiet_trials < p->ok_trials;
      all_quiet = all_quiet && p->quiet_trials > 0;
    }
    if (contended && all_quiet) {
      std::vector<const PointResult*> q = ranked;
      std::stable_sort(q.begin(), q.end(), [](const PointResult* x, const PointResult* y) {
        return x->quiet_median > y->quiet_median;
      });
      g.quiet_best = q[0]->point.index;
      g.quiet_runner_up = q[1]->point.index;
      g.quiet_margin = q[1]->quiet_median > 0 ? q[0]->quiet_median / q[1]->quiet_median - 1 : 0;
      t << " Counting only repeats with under 5% foreign CPU: " << q[0]->point.label() << " at "
        << fmt("%.0f", q[0]->quiet_median) << " img/s, " << pct(g.quiet_margin) << " ahead of "
        << q[1]->point.label() << " (" << fmt("%.0f", q[1]->quiet_median) << ").";
    }
    g.text = t.str();
  }
  return groups;
}

bool all_decided(const std::vector<GroupSummary>& groups) {
  for (const GroupSummary& g : groups)
    if (g.runner_up >= 0 && g.verdict != Verdict::real && g.verdict != Verdict::tie) return false;
  return true;
}

std::vector<std::string> model_contrast(const std::vector<PointResult>& results,
                                        const std::vector<GroupSummary>& groups) {
  std::vector<std::string> out;
  auto point = [&](int index) -> const PointResult* {
    for (const PointResult& r : results)
      if (r.point.index == index) return &r;
    return nullptr;
  };
  for (size_t i = 0; i < groups.size(); ++i)
    for (size_t j = i + 1; j < groups.size(); ++j) {
      const GroupSummary &a = groups[i], &b = groups[j];
      if (a.batch_mode != b.batch_mode || a.model == b.model || a.best < 0 || b.best < 0) continue;
      const PointResult *pa = point(a.best), *pb = point(b.best);
      if (!pa || !pb) continue;
      std::string line = a.batch_mode + " batch: " + a.model + " is fastest at " + pa->point.label() +
                         ", " + b.model + " at " + pb->point.label();
      if (pa->point.procs == pb->point.procs && pa->point.inter_op == pb->point.inter_op &&
          pa->point.threads == pb->point.threads) {
        line += ": the same split wins for both models.";
      } else if (a.decisive && b.decisive && pa->point.procs == pb->point.procs) {
        const PointResult& more_teams = pa->point.inter_op > pb->point.inter_op ? *pa : *pb;
        const PointResult& fewer_teams = pa->point.inter_op > pb->point.inter_op ? *pb : *pa;
        line += ": " + more_teams.point.model + " favours ops at once (inter-op), " +
                fewer_teams.point.model + " threads inside each op.";
      } else if (a.decisive && b.decisive) {
        const PointResult& more_procs = pa->point.procs > pb->point.procs ? *pa : *pb;
        const PointResult& more_threads = pa->point.procs > pb->point.procs ? *pb : *pa;
        line += ": " + more_procs.point.model + " favours processes, " + more_threads.point.model +
                " favours threads.";
      } else {
        // Different winners where one of them won within noise is no evidence of a difference.
        std::string noisy = !a.decisive ? a.model : b.model;
        if (!a.decisive && !b.decisive) noisy = "both models'";
        else noisy += "'s";
        line += ", but " + noisy + " margin is not real by its paired interval: no real "
                "difference between the models shows here.";
      }
      out.push_back(line);
    }
  return out;
}

std::string sweep_csv(const std::vector<PointResult>& results) {
  std::ostringstream s;
  s << "model,batch_mode,subscription,procs,inter_op,threads,cores,loader_threads,global_batch,"
       "batch_per_worker,steps,warmup_steps,repeats_ok,images_per_s_median,images_per_s_min,"
       "images_per_s_max,epoch_s,data_wait_share,forward_share,backward_share,exchange_share,"
       "update_share,sync_wait_share,foreign_cpu_max,quiet_repeats,images_per_s_quiet_median,"
       "bindings,cv,steal_max,ratio_vs_best,ratio_vs_best_lo,ratio_vs_best_hi\n";
  for (const PointResult& r : results) {
    const SweepPoint& p = r.point;
    s << p.model << ',' << p.batch_mode << ',' << p.subscription << ',' << p.procs << ','
      << p.inter_op << ',' << p.threads << ',' << p.cores << ',' << p.loader_threads << ',' << p.global_batch << ','
      << p.batch_per_worker << ',' << p.steps << ',' << p.warmup_steps << ',' << r.ok_trials << ','
      << fmt("%.1f", r1(r.ips_median)) << ',' << fmt("%.1f", r1(r.ips_min)) << ','
      << fmt("%.1f", r1(r.ips_max)) << ',' << fmt("%.3f", r3(r.epoch_s)) << ','
      << fmt("%.4f", r4(r.shares.data_wait)) << ',' << fmt("%.4f", r4(r.shares.forward)) << ','
      << fmt("%.4f", r4(r.shares.backward)) << ',' << fmt("%.4f", r4(r.shares.exchange)) << ','
      << fmt("%.4f", r4(r.shares.update)) << ',' << fmt("%.4f", r4(r.shares.sync_wait)) << ','
      << fmt("%.4f", r4(r.foreign_cpu_max)) << ','
      << r.quiet_trials << ',' << fmt("%.1f", r1(r.quiet_median)) << ',' << r.bindings << ',';
    const PairedRatio v = vs_best(results, r);
    s << fmt("%.4f", r4(r.cv())) << ',' << fmt("%.4f", r4(r.steal_max)) << ','
      << fmt("%.4f", r4(v.geo_mean)) << ',' << fmt("%.4f", r4(v.lo)) << ',' << fmt("%.4f", r4(v.hi)) << '\n';
  }
  return s.str();
}

std::string sweep_json(const SweepFacts& facts, const SweepOptions& o,
                       const std::vector<PointResult>& results,
                       const std::vector<GroupSummary>& groups,
                       const std::vector<std::string>& contrast) {
  using nlohmann::ordered_json;
  ordered_json j;
  ordered_json& machine = j["machine"];
  machine["cpu_model"] = facts.cpu_model;
  machine["hostname"] = facts.hostname;
  machine["online_cores"] = facts.online_cores;
  machine["memory_bytes"] = facts.memory_bytes;
  ordered_json& versions = j["versions"];
  versions["onednn"] = facts.onednn;
  versions["grpc"] = facts.grpc;
  versions["protobuf"] = facts.protobuf;
  versions["compiler"] = facts.compiler;
  ordered_json& sweep = j["sweep"];
  sweep["cores"] = facts.cores;
  sweep["data"] = facts.data_dir;
  sweep["synthetic_data"] = facts.synthetic_data;
  sweep["repeats"] = o.repeats;
  sweep["rounds"] = facts.rounds;
  sweep["until_clear"] = o.until_clear;
  sweep["stopped"] = facts.stopped;
  sweep["partial"] = facts.partial;
  sweep["tolerance"] = o.tolerance;
  sweep["verdict_rule"] = "paired: per round, the ratio of the two splits' images/s; the 95% "
                          "Student-t interval of the mean log ratio, exponentiated; real when it "
                          "lies above 1, a tie when within +-tolerance";
  sweep["warmup_steps"] = o.warmup_steps;
  sweep["batch"] = o.batch;
  sweep["under"] = o.under;
  sweep["over"] = o.over;
  sweep["order"] = "interleaved: rounds alternately forward and backward over the points";
  sweep["wall_seconds"] = facts.wall_seconds;
  ordered_json& points = j["points"] = ordered_json::array();
  for (const PointResult& r : results) {
    const SweepPoint& p = r.point;
    ordered_json pt;
    pt["index"] = p.index;
    pt["label"] = p.label();
    pt["model"] = p.model;
    pt["batch_mode"] = p.batch_mode;
    pt["subscription"] = p.subscription;
    pt["procs"] = p.procs;
    pt["inter_op"] = p.inter_op;
    pt["threads"] = p.threads;
    pt["cores"] = p.cores;
    pt["loader_threads"] = p.loader_threads;
    pt["global_batch"] = p.global_batch;
    pt["batch_per_worker"] = p.batch_per_worker;
    pt["steps"] = p.steps;
    pt["warmup_steps"] = p.warmup_steps;
    pt["repeats_ok"] = r.ok_trials;
    pt["bindings"] = r.bindings;
    pt["images_per_s"]["median"] = r1(r.ips_median);
    pt["images_per_s"]["min"] = r1(r.ips_min);
    pt["images_per_s"]["max"] = r1(r.ips_max);
    pt["epoch_s"] = r3(r.epoch_s);
    write_shares(pt, r.shares, r4);
    pt["foreign_cpu_max"] = r4(r.foreign_cpu_max);
    pt["steal_max"] = r4(r.steal_max);
    pt["cv"] = r4(r.cv());
    {
      const PairedRatio v = vs_best(results, r);
      ordered_json& vb = pt["ratio_vs_best"];
      vb["rounds"] = v.rounds;
      vb["geo_mean"] = r4(v.geo_mean);
      vb["median"] = r4(v.median);
      vb["lo"] = r4(v.lo);
      vb["hi"] = r4(v.hi);
    }
    pt["quiet_repeats"] = r.quiet_trials;
    pt["images_per_s_quiet_median"] = r1(r.quiet_median);
    ordered_json& trials = pt["trials"] = ordered_json::array();
    for (const TrialFigures& t : r.trials) {
      ordered_json tj;
      tj["repeat"] = t.repeat;
      tj["order"] = t.order;
      tj["ok"] = t.ok;
      tj["foreign_cpu_share"] = t.foreign_cpu_share;
      tj["steal_share"] = t.steal_share;
      if (t.ok) {
        tj["images_per_s"] = t.images_per_s;
        // This trial against the best of its group in the same round.
        double round_best = 0;
        for (const PointResult& x : results) {
          if (x.point.model != p.model || x.point.batch_mode != p.batch_mode) continue;
          const std::vector<double> b = x.by_round();
          if (t.repeat >= 0 && size_t(t.repeat) < b.size() && b[size_t(t.repeat)] > round_best)
            round_best = b[size_t(t.repeat)];
        }
        if (round_best > 0) tj["ratio_to_round_best"] = t.images_per_s / round_best;
        tj["seconds"] = t.seconds;
      } else {
        tj["error"] = t.error;
      }
      trials.push_back(std::move(tj));
    }
    points.push_back(std::move(pt));
  }
  ordered_json& summary = j["summary"] = ordered_json::array();
  for (const GroupSummary& g : groups) {
    ordered_json gj;
    gj["model"] = g.model;
    gj["batch_mode"] = g.batch_mode;
    gj["best"] = g.best;
    gj["runner_up"] = g.runner_up;
    gj["margin"] = g.margin;
    gj["spread"] = g.spread;
    ordered_json& pj = gj["paired"];
    pj["rounds"] = g.paired.rounds;
    pj["geo_mean"] = g.paired.geo_mean;
    pj["median"] = g.paired.median;
    pj["lo"] = g.paired.lo;
    pj["hi"] = g.paired.hi;
    pj["sd_log"] = g.paired.sd_log;
    pj["best_ahead_rounds"] = g.paired.a_ahead;
    pj["contended_rounds_left_out"] = g.contended_rounds;
    gj["verdict"] = verdict_name(g.verdict);
    gj["real"] = g.decisive;
    gj["too_noisy"] = g.too_noisy;
    gj["quiet_best"] = g.quiet_best;
    gj["quiet_margin"] = g.quiet_margin;
    gj["text"] = g.text;
    summary.push_back(std::move(gj));
  }
  j["contrast"] = contrast;
  return json_text(j) + "\n";
}

std::string sweep_summary_text(const std::vector<PointResult>& results,
                               const std::vector<GroupSummary>& groups,
                               const std::vector<std::string>& contrast) {
  std::ostringstream s;
  char line[256];
  std::snprintf(line, sizeof line,
                "%-16s %-10s %-10s %5s %9s %17s %20s %8s  %5s %5s %5s %5s %5s %5s\n", "model",
                "batch", "split", "batch", "img/s", "min..max", "vs best (95%)", "s/epoch",
                "data", "fwd", "bwd", "exch", "(upd)", "sync");
  s << line;
  for (const PointResult& r : results) {
    const SweepPoint& p = r.point;
    if (r.ok_trials == 0) {
      std::snprintf(line, sizeof line, "%-16s %-10s %-10s %5d  FAILED: %s\n", p.model.c_str(),
                    p.batch_mode.c_str(), p.label().c_str(), p.global_batch,
                    r.trials.empty() ? "not run" : r.trials.front().error.c_str());
    } else {
      // The point's paired ratio to its group's best, with the interval ("best" for the best).
      const PairedRatio v = vs_best(results, r);
      char rel[64];
      if (group_best(results, r) == &r) std::snprintf(rel, sizeof rel, "best");
      else if (v.rounds >= 2) std::snprintf(rel, sizeof rel, "%.3f (%.3f..%.3f)", v.geo_mean, v.lo, v.hi);
      else if (v.rounds == 1) std::snprintf(rel, sizeof rel, "%.3f", v.geo_mean);
      else std::snprintf(rel, sizeof rel, "-");
      std::snprintf(line, sizeof line,
                    "%-16s %-10s %-10s %5d %9.0f %8.0f..%-8.0f %20s %8.1f  %4.0f%% %4.0f%% %4.0f%% "
                    "%4.1f%% %4.1f%% %4.1f%%\n",
                    p.model.c_str(), p.batch_mode.c_str(), p.label().c_str(), p.global_batch,
                    r.ips_median, r.ips_min, r.ips_max, rel, r.epoch_s, 100 * r.shares.data_wait,
                    100 * r.shares.forward, 100 * r.shares.backward, 100 * r.shares.exchange,
                    100 * r.shares.update, 100 * r.shares.sync_wait);
    }
    s << line;
  }
  s << "\n";
  double busiest = 0;
  for (const PointResult& r : results) busiest = std::max(busiest, r.foreign_cpu_max);
  if (busiest > 0.05)
    s << "WARNING: other programs used up to " << pct(busiest) << " of this machine's CPU during "
      << "some trials (column foreign_cpu_max): those repeats are slow for reasons unrelated to "
      << "the split; rerun on a quiet machine, or with more --repeats.\n";
  double steal = 0;
  for (const PointResult& r : results) steal = std::max(steal, r.steal_max);
  if (steal > 0.01)
    s << "WARNING: the hypervisor gave up to " << pct(steal) << " of this guest's CPU time to "
      << "other guests during some trials (steal time, column steal_max): invisible to top, it "
      << "slows a trial as a neighbour would.\n";
  for (const GroupSummary& g : groups) s << g.text << "\n";
  for (const std::string& c : contrast) s << c << "\n";
  return s.str();
}

}  // namespace ts
