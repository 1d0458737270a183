#include "stop_signals.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

namespace ts {

namespace {

const int kStopSignals[] = {SIGINT, SIGTERM, SIGHUP};

std::atomic<int> g_signal{0};
std::atomic<bool> g_watched{false};
std::mutex g_text_mutex;
std::string g_program = "threadsplit";  // guarded by g_text_mutex
std::string g_what;                      // guarded by g_text_mutex

// Registered children: pid in the low 32 bits, bit 32 set when the first signal is passed on.
// 0: a free slot. Lock-free, so the signal thread never waits on the thread that forks.
constexpr int kSlots = 256;
std::atomic<int64_t> g_children[kSlots];
constexpr int64_t kForward = int64_t(1) << 32;

sigset_t stop_set() {
  sigset_t s;
  sigemptyset(&s);
  for (int sig : kStopSignals) sigaddset(&s, sig);
  return s;
}

// The signals this process watches: the three, less any ignored when it started (nohup's
// SIGHUP stays ignored; a blocked-but-ignored signal would still be taken by sigwait).
sigset_t g_watched_set;

// With write(2), not stdio: the training thread may hold stderr's lock, or stderr be a full
// pipe; this thread must get back to sigwait so that a second signal still stops at once.
void say(const std::string& line) {
  const std::string text = line + "\n";
  ssize_t ignored = write(STDERR_FILENO, text.data(), text.size());
  (void)ignored;
}

[[noreturn]] void stop_at_once(int sig, const std::string& why) {
  // The children first, and the line with write(2), not stdio: another thread may hold
  // stderr's lock, and a full pipe must not keep the workers alive.
  for (auto& slot : g_children) {
    const int64_t v = slot.load();
    if (v != 0) kill(pid_t(v & 0xffffffff), SIGKILL);
  }
  const std::string line = why + "\n";
  ssize_t ignored = write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
  _exit(128 + sig);
}

void take_signals() {
  const sigset_t set = g_watched_set;
  while (true) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    int none = 0;
    const bool first = g_signal.compare_exchange_strong(none, sig);
    std::string program, what;
    {
      std::lock_guard<std::mutex> lock(g_text_mutex);
      program = g_program;
      what = g_what;
    }
    const std::string name = signal_name(sig);
    if (!first)
      stop_at_once(sig, program + ": " + name + " (a second signal): stopping at once, nothing more "
                                            "is saved; child processes (workers, trials) killed");
    if (!g_watched.load())
      stop_at_once(sig, program + ": " + name + ": stopping at once" +
                            (what.empty() ? std::string() : " (" + what + ")"));
    for (auto& slot : g_children) {
      const int64_t v = slot.load();
      if (v & kForward) kill(pid_t(v & 0xffffffff), sig);
    }
    say(program + ": " + name + ": " + (what.empty() ? "stopping" : what) +
        " (a second signal stops at once)");
  }
}

}  // namespace

void install_stop_signals(const std::string& program) {
  {
    std::lock_guard<std::mutex> lock(g_text_mutex);
    g_program = program;
  }
  static std::once_flag once;
  std::call_once(once, [] {
    sigemptyset(&g_watched_set);
    for (int sig : kStopSignals) {
      struct sigaction old;
      if (sigaction(sig, nullptr, &old) == 0 && old.sa_handler == SIG_IGN) continue;
      sigaddset(&g_watched_set, sig);
    }
    const sigset_t set = g_watched_set;
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    bool any = false;
    for (int sig : kStopSignals) any = any || sigismember(&set, sig) == 1;
    if (any) std::thread(take_signals).detach();
  });
}

int stop_signal() { return g_signal.load(); }

std::string signal_name(int signo) {
  switch (signo) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGHUP: return "SIGHUP";
    default: return "signal " + std::to_string(signo);
  }
}

void watch_stop_request(bool watched, const std::string& what) {
  {
    std::lock_guard<std::mutex> lock(g_text_mutex);
    g_what = what;
  }
  g_watched.store(watched);
}

void register_child(pid_t pid, bool forward) {
  const int64_t v = int64_t(uint32_t(pid)) | (forward ? kForward : 0);
  for (auto& slot : g_children) {
    int64_t free_slot = 0;
    if (slot.compare_exchange_strong(free_slot, v)) return;
  }
  // More than kSlots children at once: the rest still die by PR_SET_PDEATHSIG.
}

void unregister_child(pid_t pid) {
  for (auto& slot : g_children) {
    int64_t v = slot.load();
    if (v != 0 && pid_t(v & 0xffffffff) == pid) slot.compare_exchange_strong(v, 0);
  }
}

bool prepare_child_signals(bool ignore_stop_signals) {
  if (ignore_stop_signals) {
    struct sigaction ign;
    std::memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    for (int sig : kStopSignals)
      if (sigaction(sig, &ign, nullptr) != 0) return false;
  }
  if (!ignore_stop_signals) return true;  // blocked across exec: the program (a trial
                                          // coordinator) takes them from its first line on
  const sigset_t set = stop_set();
  return sigprocmask(SIG_UNBLOCK, &set, nullptr) == 0;
}

void throw_if_stop_requested() {
  if (const int sig = stop_signal()) throw StopRequested(sig);
}

}  // namespace ts
