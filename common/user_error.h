// A problem the user can fix, said in one sentence: what was wrong, where (the flag, the file,
// the variable), and what to do. Thrown where input enters (flags, files, the environment),
// caught once, at the top of a program, and printed as "program: sentence" (exit status 2 for
// the coordinator before anything started). The kinds below say where it came from; inside,
// nothing needs to re-wrap them.
#pragma once
#include <stdexcept>
#include <string>

namespace ts {

class UserError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Runs f(); an exception it throws becomes a UserError whose sentence starts with `where`
// (e.g. "--port-file: "). For library calls that do not know which flag they serve.
template <class F>
auto as_user_error(const std::string& where, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    throw UserError(where + e.what());
  }
}

}  // namespace ts
