#include "step_deadline.h"

#include <algorithm>
#include <fstream>

namespace ts {

StepDeadline::StepDeadline(double grace_s, double first_s, double cap_s)
    : grace_s_(grace_s), first_s_(first_s), cap_s_(cap_s) {}

void StepDeadline::record(double step_seconds) {
  recent_.push_back(step_seconds);
  if (recent_.size() > kRecent) recent_.pop_front();
}

double StepDeadline::slowest_recent() const {
  return recent_.empty() ? 0.0 : *std::max_element(recent_.begin(), recent_.end());
}

double StepDeadline::seconds() const {
  const double d = recent_.empty() ? std::max(first_s_, grace_s_) : slowest_recent() + grace_s_;
  return std::min(d, cap_s_);
}

bool process_stopped(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return false;
  // "pid (comm) S ...": comm may hold spaces and parentheses, the state follows the last ')'.
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return false;
  const char state = stat[paren + 2];
  return state == 'T' || state == 't';
}

}  // namespace ts
