// How the worker ends when its run cannot go on: thrown, caught once in run_worker
// (worker/step_loop.cpp), which prints the message and exits with the code.
#pragma once
#include <string>

namespace ts {

// `code` is the process's exit status (worker/step_loop.h lists them); `message` is one
// sentence for the user.
struct WorkerExit {
  int code;
  std::string message;
};

}  // namespace ts
