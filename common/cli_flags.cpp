#include "cli_flags.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace ts {
namespace cli {

namespace {

constexpr size_t kWidth = 100;        // --help lines wrap before this column
constexpr size_t kDescColumn = 25;    // explanations start here
constexpr char kGlue = '\x1f';         // a space that wrap() does not break at

bool read_whole(const std::string& s, long long& x) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  x = std::strtoll(s.c_str(), &end, 10);
  return *end == '\0' && errno != ERANGE;
}

bool read_real(const std::string& s, double& x) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  x = std::strtod(s.c_str(), &end);
  return *end == '\0' && errno != ERANGE && std::isfinite(x);
}

// A range as a validator's description: CLI11 appends it to the type name after a colon
// ("HOST:PORT" has one of its own), so the brackets mark where it starts.
std::string bracketed(const std::string& range) { return "[" + range + "]"; }

size_t range_start(const std::string& type_name) {
  if (type_name.empty() || type_name.back() != ']') return std::string::npos;
  return type_name.rfind(":[");
}

// x exactly, for CLI11's own conversion: it reads through long double, which for a decimal
// string can round differently than strtod (and the earlier parsers) did.
std::string exact(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", x);
  return buf;
}

std::string str(double x) {
  std::ostringstream s;
  s << x;
  return s.str();
}

// `text` wrapped to lines of at most kWidth - indent characters; explicit newlines kept.
// Every line after the first is indented by `indent` spaces.
std::string wrap(const std::string& text, size_t indent) {
  const size_t width = kWidth > indent + 20 ? kWidth - indent : 20;
  std::string out, line;
  auto flush = [&](bool last) {
    out += line;
    line.clear();
    if (!last) out += "\n" + std::string(indent, ' ');
  };
  std::istringstream paragraphs(text);
  std::string paragraph;
  bool first_paragraph = true;
  while (std::getline(paragraphs, paragraph)) {
    if (!first_paragraph) flush(false);
    first_paragraph = false;
    std::istringstream words(paragraph);
    std::string word;
    while (words >> word) {
      if (!line.empty() && line.size() + 1 + word.size() > width) flush(false);
      if (!line.empty()) line += ' ';
      line += word;
    }
  }
  flush(true);
  return out;
}

// The --help layout (see cli_flags.h).
class Layout : public CLI::Formatter {
 public:
  Layout(std::string usage, std::string about) : usage_(std::move(usage)), about_(std::move(about)) {}

  std::string make_help(const CLI::App* app, std::string, CLI::AppFormatMode) const override {
    std::ostringstream out;
    out << usage_;
    if (!about_.empty()) out << "\n" << wrap(about_, 0) << "\n";
    bool first = true;
    for (const std::string& group : app->get_groups()) {
      const auto opts = app->get_options([&](const CLI::Option* o) { return o->get_group() == group; });
      if (group.empty() || opts.empty()) continue;
      out << (first ? "\n" : "") << group << ":\n";
      first = false;
      for (const CLI::Option* o : opts) out << make_option(o, o->get_positional());
    }
    const std::string footer = app->get_footer();
    if (!footer.empty()) out << wrap(footer, 0) << "\n";
    return out.str();
  }

  std::string make_option(const CLI::Option* o, bool positional) const override {
    std::string left = "  ";
    if (positional) {
      left += o->get_name(true, false);
    } else {
      std::string names;
      for (const std::string& s : o->get_snames()) names += (names.empty() ? "-" : ", -") + s;
      for (const std::string& l : o->get_lnames()) names += (names.empty() ? "--" : ", --") + l;
      left += names;
      if (o->get_type_size() != 0) left += " " + label(*o);
    }
    // The range and the default are each kept on one line (kGlue stands for their spaces).
    auto glued = [](std::string t) {
      for (char& c : t)
        if (c == ' ') c = kGlue;
      return t;
    };
    std::string desc = o->get_description();
    const std::string range = range_text(*o);
    if (!range.empty()) desc += " " + glued("[" + range + "]");
    if (o->get_type_size() != 0 && !o->get_default_str().empty())
      desc += " " + glued("(default " + o->get_default_str() + ")");
    std::string line = left;
    if (left.size() + 1 > kDescColumn) line += "\n" + std::string(kDescColumn, ' ');
    else line += std::string(kDescColumn - left.size(), ' ');
    line += wrap(desc, kDescColumn) + "\n";
    for (char& c : line)
      if (c == kGlue) c = ' ';
    return line;
  }

 private:
  // The option's own type name (P, DIR, adam|sgd), without the validators' ranges.
  static std::string label(const CLI::Option& o) {
    const std::string t = o.get_type_name();
    return t.substr(0, range_start(t));
  }

  std::string usage_, about_;
};

std::string after_name(const std::string& message, std::string* name) {
  const size_t colon = message.find(": ");
  if (colon == std::string::npos) return std::string();
  *name = message.substr(0, colon);
  return message.substr(colon + 2);
}

}  // namespace

CLI::Validator at_least(int64_t lo, int64_t hi) {
  const bool unbounded = hi == kIntMax || hi == kInt64Max;
  const std::string desc =
      unbounded ? ">= " + std::to_string(lo) : std::to_string(lo) + ".." + std::to_string(hi);
  return CLI::Validator(
      [lo, hi](std::string& s) -> std::string {
        long long x = 0;
        if (!read_whole(s, x)) return "expects a whole number, got '" + s + "'";
        if (x < lo) return "must be at least " + std::to_string(lo) + ", got " + s;
        if (x > hi) return "must be at most " + std::to_string(hi) + ", got " + s;
        s = std::to_string(x);
        return std::string();
      },
      bracketed(desc));
}

CLI::Validator in_range(int64_t lo, int64_t hi) {
  const std::string range = std::to_string(lo) + ".." + std::to_string(hi);
  return CLI::Validator(
      [lo, hi, range](std::string& s) -> std::string {
        long long x = 0;
        if (!read_whole(s, x)) return "expects a whole number, got '" + s + "'";
        if (x < lo || x > hi) return "must be in " + range + ", got " + s;
        s = std::to_string(x);
        return std::string();
      },
      bracketed(range));
}

CLI::Validator positive(double hi) {
  const bool bounded = hi != kNoLimit;
  const std::string range = bounded ? "(0, " + str(hi) + "]" : std::string();
  return CLI::Validator(
      [hi, bounded, range](std::string& s) -> std::string {
        double x = 0;
        if (!read_real(s, x)) return "expects a number, got '" + s + "'";
        if (bounded && !(x > 0 && x <= hi)) return "must be in " + range + ", got " + s;
        if (!(x > 0)) return "must be positive, got " + s;
        s = exact(x);
        return std::string();
      },
      bracketed(bounded ? "> 0, <= " + str(hi) : "> 0"));
}

CLI::Validator real_in(double lo, double hi, bool hi_open) {
  const std::string range = "[" + str(lo) + ", " + str(hi) + (hi_open ? ")" : "]");
  return CLI::Validator(
      [lo, hi, hi_open, range](std::string& s) -> std::string {
        double x = 0;
        if (!read_real(s, x)) return "expects a number, got '" + s + "'";
        if (!(x >= lo && (hi_open ? x < hi : x <= hi))) return "must be in " + range + ", got " + s;
        s = exact(x);
        return std::string();
      },
      bracketed(">= " + str(lo) + (hi_open ? ", < " : ", <= ") + str(hi)));
}

CLI::Validator real_at_least(double lo, double hi) {
  const bool bounded = hi != kNoLimit;
  return CLI::Validator(
      [lo, hi, bounded](std::string& s) -> std::string {
        double x = 0;
        if (!read_real(s, x)) return "expects a number, got '" + s + "'";
        if (!(x >= lo)) return "must be at least " + str(lo) + ", got " + s;
        if (bounded && !(x <= hi)) return "must be at most " + str(hi) + ", got " + s;
        s = exact(x);
        return std::string();
      },
      bracketed(">= " + str(lo) + (bounded ? ", <= " + str(hi) : std::string())));
}

CLI::Validator one_of(std::vector<std::string> words) {
  std::string list;
  for (size_t i = 0; i < words.size(); ++i)
    list += (i == 0 ? "" : i + 1 == words.size() ? " or " : ", ") + words[i];
  return CLI::Validator(
      [words, list](std::string& s) -> std::string {
        for (const std::string& w : words)
          if (s == w) return std::string();
        return "must be " + list + ", got '" + s + "'";
      },
      std::string());
}

std::unique_ptr<CLI::App> new_app(const std::string& name, std::string usage, std::string about) {
  auto app = std::make_unique<CLI::App>(about, name);
  app->set_help_flag();  // removed here, added last by add_help()
  app->allow_extras();   // parse() refuses them in its own words
  app->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app->option_defaults()->disable_flag_override();
  app->formatter(std::make_shared<Layout>(std::move(usage), std::move(about)));
  return app;
}

void add_help(CLI::App& app, const std::string& heading) {
  app.set_help_flag("-h,--help", "this text")->group(heading);
}

void group(CLI::App& app, const std::string& heading) { app.option_defaults()->group(heading); }

std::string sentence(const CLI::ParseError& e, const std::string& program) {
  const std::string m = e.what();
  std::string name;
  if (e.get_name() == "ValidationError") {
    const std::string rest = after_name(m, &name);
    if (!rest.empty()) return name + " " + rest;
  }
  if (e.get_name() == "ArgumentMismatch") {
    const size_t over = m.find(" was given a disallowed flag override");
    if (over != std::string::npos) {
      const std::string flag = m.substr(0, over);  // CLI11 names it without its dashes
      return (flag.rfind('-', 0) == 0 ? flag : "--" + flag) + " takes no value";
    }
    const std::string rest = after_name(m, &name);
    if (rest.find("required") != std::string::npos && rest.find("missing") != std::string::npos)
      return name + " needs a value (see " + program + " --help)";
  }
  return m;
}

bool parse(CLI::App& app, const std::vector<std::string>& args) {
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // as CLI11 takes them
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    return false;
  } catch (const CLI::ParseError& e) {
    throw UsageError(sentence(e, app.get_name()));
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  if (!app.remaining().empty())
    throw UsageError("unknown argument '" + app.remaining().front() + "' (see " + app.get_name() +
                     " --help)");
  return true;
}

bool parse(CLI::App& app, int argc, char** argv, int first) {
  std::vector<std::string> args;
  for (int i = first; i < argc; ++i) args.emplace_back(argv[i]);
  return parse(app, args);
}

std::string range_text(const CLI::Option& opt) {
  const std::string t = opt.get_type_name();
  const size_t start = range_start(t);
  return start == std::string::npos ? std::string() : t.substr(start + 2, t.size() - start - 3);
}

}  // namespace cli
}  // namespace ts
