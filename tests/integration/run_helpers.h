// Starting and watching real processes for the integration tests: the coordinator
// (THREADSPLIT_BIN) and hand-started workers (THREADSPLIT_WORKER_BIN), on loopback.
#pragma once
#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

namespace ts_test {

// TEST_TMP_DIR, created on first use.
std::string tmp_dir();

// CIFAR10_TEST_DIR when it holds the data set, else synthetic data generated once into
// TEST_TMP_DIR/synthetic.
std::string test_data_dir();

struct Process {
  pid_t pid = -1;
  std::string out_path, err_path;  // its stdout and stderr
  std::string out() const;
  std::string err() const;
};

// fork/exec argv[0] with stdout/stderr in TEST_TMP_DIR/<name>.out/.err; `env` entries
// ("NAME=value") are set, and "NAME=" entries unset, in the child.
Process start(const std::string& name, const std::vector<std::string>& argv,
              const std::vector<std::string>& env = {});

// Waits up to timeout_s; returns the exit code (128 + signal when killed), or -1 after
// killing a process that did not finish in time.
int wait_exit(Process& p, double timeout_s);

// Polls `cond` every 20 ms for up to timeout_s.
bool wait_until(const std::function<bool()>& cond, double timeout_s);

// True when no process `pid` runs any more (gone, or a zombie nobody reaped yet).
bool process_gone(pid_t pid);

std::string read_text(const std::string& path);

// The coordinator's command line with the test defaults (loopback, worker binary, data).
std::vector<std::string> coordinator_args(const std::vector<std::string>& extra);

// Worker pids from the coordinator's "threadsplit: worker R pid N on ..." lines.
std::vector<pid_t> worker_pids(const std::string& coordinator_stdout);

// The n worker pids, once the output `out` (or the process's stdout) names all of them;
// fewer when timeout_s passed first.
std::vector<pid_t> wait_for_workers(const std::function<std::string()>& out, size_t n, double timeout_s = 120);
std::vector<pid_t> wait_for_workers(const Process& coord, size_t n, double timeout_s = 120);

// An empty directory TEST_TMP_DIR/<name> (removed first if it exists).
std::string fresh_dir(const std::string& name);

// a, then b: a command line plus more flags.
std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b);

// A random pause in [lo_s, hi_s], so a fault lands on a different step each run.
void random_pause(double lo_s, double hi_s);

// Training steps the coordinator has done so far, read off its progress bar (the run needs
// "--progress on"): the bar draws "epoch E/N [...] d/T" at most 10 times a second and always
// at an epoch's last step, so the sum over epochs of the largest d seen is a lower bound
// that lags the run by at most a tenth of a second.
int steps_done(const std::string& coordinator_stdout);

// Waits until the run has done at least a random number of steps in [lo, hi] (so a fault
// lands on a different step each run, but always while the run still has steps left: a
// pause in seconds raced the run's end on a fast machine). False when the coordinator
// exited or timeout_s passed first.
bool wait_for_random_step(const Process& coord, int lo, int hi, double timeout_s = 120);

// Every pid gone (or a zombie); SIGKILL to those still there (a failed test leaves none).
bool all_gone(const std::vector<pid_t>& pids);
void kill_all(const std::vector<pid_t>& pids);

}  // namespace ts_test
