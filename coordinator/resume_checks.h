// What --resume and --init compare before they continue a saved run: the settings that
// change the math (a resumed run must compute what the interrupted one would have), and the
// saved data position against this run's epoch plan.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ts {

// One setting that differs: the configuration field, how a user sets it, both values.
struct SettingChange {
  std::string field;   // as in the run report's "config"
  std::string flag;    // e.g. "--batch"
  std::string saved, given;
};

// The fields of two configurations (the run report's "config" JSON, as checkpoints keep it)
// that change the math and differ: model, global batch, training records, shuffle, augment,
// seed, optimizer and its hyper-parameters. nullopt when the saved text is empty or not such
// a JSON object (a checkpoint written by hand or by a build that kept none).
std::optional<std::vector<SettingChange>> math_changes(const std::string& saved_config_json,
                                                       const std::string& given_config_json);

// "--batch: 128 saved, 256 given; --lr: 0.001 saved, 0.01 given".
std::string describe_changes(const std::vector<SettingChange>& changes);

// Empty when the saved position (step_in_epoch steps into an epoch) lies inside an epoch of
// `epoch_steps` steps; else one sentence saying why it cannot be continued.
std::string position_problem(int64_t step_in_epoch, int epoch_steps, int global_batch);

}  // namespace ts
