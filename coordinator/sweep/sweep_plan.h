// The sweep's plan: which configurations (points) to measure and in which order to run their
// repeats. Pure planning, no processes: coordinator/sweep/sweep_command.cpp runs the plan.
//
// For a core budget N the points are every split P x T = N (P dividing N), and on request
// the under-subscribed splits P x T = N/2 (on the first N/2 cores) and the over-subscribed
// P x T = 2N, each for every model, batch mode and loader thread count asked for.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace ts {

struct SweepOptions {
  // A model may carry a precision: "airbench94@bf16" runs --model airbench94 --precision bf16.
  std::vector<std::string> models = {"seed_cnn", "tf_tutorial_cnn"};
  std::vector<std::string> batch_modes = {"global", "per_worker"};
  std::vector<int> loader_threads = {1};
  // Inter-op teams per worker to try (--inter-op LIST): each I that divides a budget of N
  // cores adds its splits P x I x T = N.
  std::vector<int> inter_op = {1, 2};
  bool under = false, over = false;
  // Interleaved rounds: every point once per round. `repeats` rounds at least; with
  // until_clear more, until every model's top two are decided (sweep_report.h's all_decided),
  // max_rounds are done or another round would pass time_budget_s.
  int repeats = 5;
  bool until_clear = false;
  int max_rounds = 20;
  double time_budget_s = 3600;
  double tolerance = 0.02;         // a paired interval within +-tolerance is a measured tie
  int batch = 128;                 // global batch, global mode
  int batch_per_worker = 0;        // per_worker mode; 0: batch / N, so P = N matches global mode
  std::map<std::string, int> steps = {{"seed_cnn", 200}, {"tf_tutorial_cnn", 40}};  // timed
  int default_steps = 50;          // a model not named in `steps`
  int warmup_steps = 5;            // run before the timed steps, excluded from the figures
};

struct SweepPoint {
  int index = 0;                   // position in points order
  std::string model;
  std::string batch_mode;          // "global" or "per_worker"
  std::string subscription;        // "full", "under", "over"
  int procs = 1, threads = 1;
  int inter_op = 1;                // teams per worker running ops at once (--inter-op)
  int cores = 1;                   // cores given to the run (N, or N/2 when under)
  int loader_threads = 1;
  int global_batch = 0;
  int batch_per_worker = 0;        // 0 in global mode
  int steps = 0, warmup_steps = 0; // timed steps, and the untimed ones before them
  std::string label() const;       // P x I x T: "2x1x1", "1x2x1 L2", "4x1x1 over"
};

struct Trial {
  int point = 0;                   // index into the points
  int repeat = 0;                  // 0-based
  int order = 0;                   // position in the run order
};

// Every P with P x T = n, as (P, T) pairs, P ascending.
std::vector<std::pair<int, int>> splits_of(int n);

struct Split3 {
  int procs, inter_op, threads;
};
// Every P x I x T = n with I among `inter_op` (those that divide n), P ascending, then I.
std::vector<Split3> splits_of(int n, const std::vector<int>& inter_op);

// Points in a stable order: model, batch mode, subscription (full, under, over), P, I,
// loader threads. Throws std::invalid_argument for an impossible request (no cores, bad mode).
std::vector<SweepPoint> plan_points(const SweepOptions& o, int core_count);

// R passes over the points, alternately forward and backward (A B C C B A A B C ...), so a
// slow drift of the machine's speed lands on every point alike.
std::vector<Trial> interleave(int points, int repeats);
// Round r of that order alone (its Trial::order counts from first_order).
std::vector<Trial> round_order(int points, int round, int first_order);

// "1,2,4" -> {1, 2, 4}; "seed_cnn=100,tf_tutorial_cnn=20" handled by parse_steps.
std::vector<int> parse_int_list(const std::string& flag, const std::string& v);
std::vector<std::string> parse_name_list(const std::string& v);
// "N" (every model) or "model=N,model=N". Throws std::invalid_argument.
void parse_steps(const std::string& v, SweepOptions& o);

}  // namespace ts
