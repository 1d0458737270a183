#include "resume_checks.h"

#include <nlohmann/json.hpp>

namespace ts {

namespace {

struct MathField {
  const char* field;
  const char* flag;
  // JSON of the value a checkpoint written before the field existed ran with (nullptr: none).
  const char* absent_means = nullptr;
};

// The settings under which the same parameters and position give other steps.
constexpr MathField kMathFields[] = {
    {"model", "--model"},
    {"global_batch", "--batch (or --batch-per-worker x workers)"},
    {"train_records", "the training records (--data)"},
    {"shuffle", "--no-shuffle"},
    {"augment", "--augment"},
    {"seed", "--seed"},
    {"optimizer", "--optimizer"},
    {"lr", "--lr"},
    {"momentum", "--momentum"},
    {"beta1", "beta1"},
    {"beta2", "beta2"},
    {"epsilon", "epsilon"},
    {"precision", "--precision", "\"f32\""},
    {"label_smoothing", "--label-smoothing", "0.0"},
    {"loss", "--loss", "\"mean\""},
    {"bn_group", "--bn-group", "0"},
    {"normalize", "--normalize", "false"},
    {"drop_last", "--drop-last", "false"},
    {"weight_decay", "--weight-decay", "0.0"},
    {"nesterov", "--nesterov", "false"},
    {"bias_lr_scale", "--bias-lr-scale", "1.0"},
    {"lr_schedule", "--lr-schedule", "\"constant\""},
    {"schedule_steps", "--epochs or --steps (the schedule's length)", "0"},
    {"whiten_bias_epochs", "--whiten-bias-epochs", "0"},
    {"lookahead_every", "--lookahead-every", "0"},
};

std::optional<nlohmann::json> parse_object(const std::string& text) {
  if (text.empty()) return std::nullopt;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

std::string value_text(const nlohmann::json* v) {
  if (!v) return "(absent)";
  if (v->is_string()) return v->get<std::string>();
  return v->dump();
}

}  // namespace

std::optional<std::vector<SettingChange>> math_changes(const std::string& saved_config_json,
                                                       const std::string& given_config_json) {
  const auto saved = parse_object(saved_config_json);
  const auto given = parse_object(given_config_json);
  if (!saved || !given) return std::nullopt;
  std::vector<SettingChange> out;
  for (const MathField& f : kMathFields) {
    const auto s = saved->find(f.field), g = given->find(f.field);
    const nlohmann::json* sv = s == saved->end() ? nullptr : &*s;
    const nlohmann::json* gv = g == given->end() ? nullptr : &*g;
    // A configuration older than the setting ran with its default.
    nlohmann::json absent_default;
    if (f.absent_means && (!sv || !gv)) {
      absent_default = nlohmann::json::parse(f.absent_means);
      if (!sv) sv = &absent_default;
      if (!gv) gv = &absent_default;
    }
    if (!sv && !gv) continue;
    if (sv && gv && *sv == *gv) continue;
    out.push_back({f.field, f.flag, value_text(sv), value_text(gv)});
  }
  return out;
}

std::string describe_changes(const std::vector<SettingChange>& changes) {
  std::string s;
  for (const SettingChange& c : changes)
    s += (s.empty() ? "" : "; ") + c.flag + ": " + c.saved + " saved, " + c.given + " given";
  return s;
}

std::string position_problem(int64_t step_in_epoch, int epoch_steps, int global_batch) {
  if (step_in_epoch < epoch_steps) return "";
  return "its position (" + std::to_string(step_in_epoch) + " steps into an epoch) lies beyond an "
         "epoch of " + std::to_string(epoch_steps) + " steps at global batch " +
         std::to_string(global_batch);
}

}  // namespace ts
