// The sweep's results: what one trial measured (read from its run report), each point's
// figures over its repeats, the CSV and JSON files, and the summary that names the best split
// per model and batch mode. No processes here, so all of it can be tested on recorded figures.
#pragma once
#include <string>
#include <vector>

#include "paired_stats.h"
#include "step_timing.h"
#include "sweep_plan.h"

namespace ts {

// One run's timed window (run report "timed"), and how it was really bound.
struct TrialFigures {
  int repeat = 0, order = 0;
  bool ok = false;
  std::string error;               // when !ok
  double images_per_s = 0, seconds = 0;
  PhaseShares shares;               // the run report's timed window's
  int train_records = 45000;       // for the epoch-time estimate
  std::vector<std::string> worker_cores;  // effective binding, by rank
  bool oversubscribed = false;
  // Share of the machine's CPU (all cores) that other programs used during the trial; -1
  // when unknown. Interference only ever slows a trial down.
  double foreign_cpu_share = -1;
  // Share of the machine's CPU time the hypervisor gave to other guests (/proc/stat steal)
  // during the trial; -1 when unknown. Part of foreign_cpu_share, and invisible to top.
  double steal_share = -1;
};

// Parses a run report's text; `name` (its path) names it in errors. Returns ok == false with
// the reason when it has no timed window or lacks a figure.
TrialFigures figures_from_report(const std::string& report_json,
                                 const std::string& name = "the run report");

struct PointResult {
  SweepPoint point;
  std::vector<TrialFigures> trials;   // in repeat order, failed ones included
  int ok_trials = 0;
  double ips_median = 0, ips_min = 0, ips_max = 0;
  double epoch_s = 0;                 // train records / median images/s
  PhaseShares shares;                 // means over the successful repeats
  std::string bindings;               // "0|1": each worker's effective cores, by rank
  double foreign_cpu_max = 0;         // the busiest repeat's foreign_cpu_share
  double steal_max = 0;               // the largest steal_share of a repeat
  // The repeats during which other programs took under 5% of the CPU: on a shared machine
  // these are the figures that describe the split rather than the neighbours.
  int quiet_trials = 0;
  double quiet_median = 0;
  double spread() const;              // (max - min) / median; 0 with fewer than 2 repeats
  double cv() const;                  // standard deviation / mean of the repeats; 0 below 2
  // images/s by round (repeat index); NaN where the round's trial failed or did not run.
  std::vector<double> by_round() const;
};

// a against b round by round (paired_stats.h), leaving out the rounds where either trial
// shared the machine with other programs (over 5% of its CPU): interference only ever slows
// a trial, and a 2-thread team more than two 1-thread processes, so a contended round's
// ratio measures the neighbours, not the splits. `left_out` gets how many were.
PairedRatio paired_quiet(const PointResult& a, const PointResult& b, int* left_out = nullptr);

// Medians, ranges and mean shares of the successful trials.
PointResult aggregate(const SweepPoint& p, std::vector<TrialFigures> trials);

// One model and batch mode: the best point and the runner-up by median images/s, and what
// their paired comparison round by round (paired_stats.h) allows one to say.
struct GroupSummary {
  std::string model, batch_mode;
  int best = -1, runner_up = -1;      // point indices; -1 when absent
  double margin = 0;                  // best median / runner-up median - 1
  double spread = 0;                  // the larger run-to-run spread of the two
  PairedRatio paired;                 // best / runner-up, round by round (quiet rounds)
  int contended_rounds = 0;           // rounds left out of `paired` as contended
  Verdict verdict = Verdict::too_few;
  bool decisive = false;              // verdict == real: the interval lies above 1
  // The machine was too noisy to decide: undecided, and at the pair's noise it would take
  // more than 30 rounds (or the trials were contended).
  bool too_noisy = false;
  std::string text;                   // one paragraph for people
  // When some repeats were contended and every ranked point has a quiet one: the same ranking
  // by quiet_median (-1 otherwise).
  int quiet_best = -1, quiet_runner_up = -1;
  double quiet_margin = 0;
};

// Groups in the order the points are in. Points without a successful trial take no part.
// `tolerance`: two splits whose paired interval lies within +-tolerance are a measured tie.
std::vector<GroupSummary> summarize(const std::vector<PointResult>& results, double tolerance = 0.02);

// True when every group with two ranked points is decided (real or tie): --until-clear's stop.
bool all_decided(const std::vector<GroupSummary>& groups);

// Lines across models: where the best split's process count differs between models with the
// same batch mode, say so (a tiny model tends to favour processes, a heavy one threads).
std::vector<std::string> model_contrast(const std::vector<PointResult>& results,
                                        const std::vector<GroupSummary>& groups);

std::string sweep_csv(const std::vector<PointResult>& results);

struct SweepFacts {
  std::string cpu_model, hostname;
  int online_cores = 0;
  int64_t memory_bytes = 0;
  std::string onednn, grpc, protobuf, compiler;
  std::string cores;                  // the budget swept
  std::string data_dir;
  bool synthetic_data = false;
  double wall_seconds = 0;
  int rounds = 0;                     // interleaved rounds run
  std::string stopped;                // why the rounds stopped ("5 rounds, as asked", ...)
  bool partial = false;               // a stop signal ended the sweep before its plan
};

std::string sweep_json(const SweepFacts& facts, const SweepOptions& options,
                       const std::vector<PointResult>& results,
                       const std::vector<GroupSummary>& groups,
                       const std::vector<std::string>& contrast);

// The printed table and summary.
std::string sweep_summary_text(const std::vector<PointResult>& results,
                               const std::vector<GroupSummary>& groups,
                               const std::vector<std::string>& contrast);

}  // namespace ts
