// A bad command line (any of the four programs; common/cli_flags.h).
#pragma once
#include <stdexcept>

namespace ts {

// The message is one sentence for the user, naming the flag; printed as "program: sentence",
// exit status 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace ts
