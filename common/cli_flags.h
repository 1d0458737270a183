// What the four command lines share (threadsplit, threadsplit sweep, threadsplit_worker,
// step_bench). Each program defines its flags once, in a CLI11 App (its flag table); this file
// gives those tables one behaviour:
//   - number flags take a number in range or are refused in one sentence naming the flag
//     ("--threads must be at least 1, got 0", "--lr expects a number, got '1e'");
//   - the last of a repeated flag wins; a flag that takes no value refuses one (--resume=1);
//   - any CLI11 refusal becomes a UsageError: one sentence, printed as "program: sentence",
//     exit status 2;
//   - --help prints the usage lines, the description, then every flag of each group (in the
//     order the groups' first flags were added) with its explanation, its range and its default.
#pragma once
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "usage_error.h"

namespace ts {
namespace cli {

constexpr int64_t kIntMax = std::numeric_limits<int32_t>::max();
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr double kNoLimit = std::numeric_limits<double>::infinity();

// Validators for number flags; attach them with ->transform(): they hand CLI11 the number as
// strtoll/strtod read it (CLI11 alone would take 010 for octal, and round some decimals
// through long double). Refusals, after the flag's name: "expects a whole number, got 'x'",
// "must be at least LO, got V", "must be at most HI, got V". The range shows in --help
// (omitted where hi is a type's limit).
CLI::Validator at_least(int64_t lo, int64_t hi = kIntMax);
// The same, refusing either side as "must be in LO..HI, got V".
CLI::Validator in_range(int64_t lo, int64_t hi);
// A finite number > 0 (and <= hi): "expects a number, got '1e'", "must be positive, got 0",
// "must be in (0, HI], got V".
CLI::Validator positive(double hi = kNoLimit);
// A finite number in [lo, hi] or, with hi_open, [lo, hi): "must be in [0, 1), got 1".
CLI::Validator real_in(double lo, double hi, bool hi_open = false);
// A finite number >= lo and <= hi: "must be at least LO, got V", "must be at most HI, got V".
CLI::Validator real_at_least(double lo, double hi = kNoLimit);
// One of a few words: "must be auto, on or off, got 'maybe'".
CLI::Validator one_of(std::vector<std::string> words);

// A flag table with the conventions above. `usage` is the usage lines (each ending in \n),
// `about` the paragraph after them. Add the flags, then add_help().
std::unique_ptr<CLI::App> new_app(const std::string& name, std::string usage, std::string about);
// -h/--help, last, in `group`.
void add_help(CLI::App& app, const std::string& group);

// Starts the flags added next in --help's group `heading` (printed as "heading:").
void group(CLI::App& app, const std::string& heading);

// Parses argv[first..argc) with app. Returns false when -h/--help was given (print app.help()
// to stdout, exit 0). Throws UsageError; a flag's callback may throw UsageError or
// std::invalid_argument with its own sentence.
bool parse(CLI::App& app, int argc, char** argv, int first = 1);
bool parse(CLI::App& app, const std::vector<std::string>& args);

// The sentence for a CLI11 refusal (what parse() throws); `program` is named in the hint
// "(see PROGRAM --help)".
std::string sentence(const CLI::ParseError& e, const std::string& program);

// The option's range as --help shows it ("1..1024", ">= 1", "> 0"), or empty.
std::string range_text(const CLI::Option& opt);

}  // namespace cli
}  // namespace ts
