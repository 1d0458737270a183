// SIGINT, SIGTERM and SIGHUP ask this process to stop. install_stop_signals() blocks them in
// every thread (call it first in main, before any thread exists, so every later thread
// inherits the mask) and takes them in one thread of its own with sigwait: no code runs in a
// signal handler, so nothing here is limited to async-signal-safe calls.
//
// What a signal does depends on whether someone watches for the request:
//   watched (training, a sweep, --autotune): the first signal sets the request, which the
//     watcher reads at its next boundary (the training thread after a step), and is passed on
//     to the children registered with forward (trial coordinators);
//   not watched (setup before training, the end of the run): the process stops at once;
//   a second signal always stops at once.
// Stopping at once: every registered child gets SIGKILL, then _exit(128 + signo).
#pragma once
#include <sys/types.h>

#include <stdexcept>
#include <string>

namespace ts {

// Blocks SIGINT, SIGTERM and SIGHUP and starts the thread that takes them. `program` opens
// the lines it prints ("threadsplit", "threadsplit sweep").
void install_stop_signals(const std::string& program);

// 0 while no stop was asked for; else the first signal's number.
int stop_signal();
// "SIGTERM", "SIGINT", "SIGHUP" (else "signal N").
std::string signal_name(int signo);

// Whether a first signal only sets the request (true) or stops at once (false). `what`
// names what the watcher does, for the line printed when the signal comes ("stopping after
// the current step").
void watch_stop_request(bool watched, const std::string& what = "");

// A child to SIGKILL when the process stops at once; with `forward` it also gets the first
// signal, passed on as it came. Unregister once it is reaped (its pid may be reused).
void register_child(pid_t pid, bool forward);
void unregister_child(pid_t pid);

// Between fork and exec, in the child (async-signal-safe). With `ignore_stop_signals` (a
// worker) ignores the three signals and unblocks them, so that only the parent decides when
// the child stops (a spawned worker must not be taken down by the terminal's Ctrl-C or by a
// signal sent to the whole group before its coordinator could save). Without (a trial
// coordinator, which watches them itself) leaves them blocked across exec, so that one
// arriving before the trial's own install_stop_signals waits for it instead of killing it
// unsaved. Returns false on failure.
bool prepare_child_signals(bool ignore_stop_signals);

// Thrown where a watcher honours the request: the run or the sweep stops here.
class StopRequested : public std::runtime_error {
 public:
  explicit StopRequested(int signo)
      : std::runtime_error("stopped by " + signal_name(signo)), signo_(signo) {}
  int signo() const { return signo_; }
  int exit_status() const { return 128 + signo_; }

 private:
  int signo_;
};

// Throws StopRequested when a stop was asked for.
void throw_if_stop_requested();

}  // namespace ts
