// A bad command line (any of the four programs; common/cli_flags.h).
#pragma once
#include "user_error.h"

namespace ts {

// The message is one sentence for the user, naming the flag; printed as "program: sentence",
// exit status 2.
class UsageError : public UserError {
 public:
  using UserError::UserError;
};

}  // namespace ts
