#include "trial_runner.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <thread>

#include "atomic_file.h"
#include "stop_signals.h"
#include "timing.h"
#include "worker_launcher.h"

namespace ts {

std::string self_executable() {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "threadsplit";
  buf[n] = '\0';
  return buf;
}

namespace {

// Seconds of CPU the whole machine spent busy so far (/proc/stat, every core), and of them
// the hypervisor's steal; both -1 when unreadable.
struct MachineCpu {
  double busy = -1, steal = -1;
};
MachineCpu machine_cpu_seconds() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  if (!(in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal) || cpu != "cpu")
    return {};
  // Interrupt time is left out: the trial's own loopback traffic is processed there, and no
  // process is charged for it. Steal (the hypervisor running someone else) stays in.
  (void)irq;
  (void)softirq;
  const double tick = double(sysconf(_SC_CLK_TCK));
  return {double(user + nice + system + steal) / tick, double(steal) / tick};
}

// CPU seconds of the children this process has waited for, and their descendants.
double children_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_CHILDREN, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

}  // namespace

std::vector<std::string> point_args(const SweepPoint& p) {
  // "airbench94@bf16": the model at a precision (--precision), a sweep axis of its own.
  const size_t at = p.model.find('@');
  const std::string model = p.model.substr(0, at);
  // "resnet8.onnx": a model file (--model-file) rather than a built-in net.
  const bool file = model.size() > 5 && model.compare(model.size() - 5, 5, ".onnx") == 0;
  std::vector<std::string> a = {file ? "--model-file" : "--model", model,
                                "--procs", std::to_string(p.procs),
                                "--threads", std::to_string(p.threads),
                                "--inter-op", std::to_string(p.inter_op),
                                "--loader-threads", std::to_string(p.loader_threads),
                                "--steps", std::to_string(p.steps + p.warmup_steps),
                                "--warmup-steps", std::to_string(p.warmup_steps),
                                "--eval-every", "0",
                                "--progress", "off"};
  if (at != std::string::npos) {
    a.push_back("--precision");
    a.push_back(p.model.substr(at + 1));
  }
  if (p.batch_mode == "per_worker") {
    a.push_back("--batch-per-worker");
    a.push_back(std::to_string(p.batch_per_worker));
  } else {
    a.push_back("--batch");
    a.push_back(std::to_string(p.global_batch));
  }
  return a;
}

TrialFigures run_trial(const std::string& exe, const TrialRun& t) {
  std::remove(t.report_path.c_str());
  std::vector<std::string> argv = {exe};
  argv.insert(argv.end(), t.args.begin(), t.args.end());
  argv.push_back("--report");
  argv.push_back(t.report_path);
  std::vector<char*> cargs;
  for (auto& a : argv) cargs.push_back(&a[0]);
  cargs.push_back(nullptr);

  const MachineCpu before = machine_cpu_seconds();
  const double own_before = children_cpu_seconds();
  const double wall_before = now_seconds();
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    TrialFigures f;
    f.error = "cannot fork a trial";
    return f;
  }
  if (pid == 0) {
    const int fd = open(t.log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    // The trial dies with the sweep (its workers die with it in turn), and a signal reaches
    // it only through the sweep, once: its own process group keeps the terminal's Ctrl-C
    // from arriving twice (directly and passed on), which would stop it at once, unsaved.
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent || setpgid(0, 0) != 0 ||
        !prepare_child_signals(false))
      _exit(126);
    execv(cargs[0], cargs.data());
    _exit(127);
  }
  // A first stop signal is passed on to the trial, which stops after its step.
  register_child(pid, true);
  const double until = now_seconds() + t.timeout_s;
  int status = 0;
  bool timed_out = false;
  double stop_until = 0;  // once a stop signal came: how long the trial may take to stop
  while (true) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid || r < 0) {
      unregister_child(pid);
      break;
    }
    if (stop_signal() && stop_until == 0) stop_until = now_seconds() + 30;
    if (stop_until > 0 && now_seconds() > stop_until) {
      status = stop_worker(pid, 0);
      break;
    }
    if (now_seconds() > until) {
      // SIGTERM first: the coordinator then stops its workers; SIGKILL if it does not go.
      kill(pid, SIGTERM);
      status = stop_worker(pid, 5);
      timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // CPU time other programs took from the machine while the trial ran: a trial that shared
  // the cores with a compiler is slower for reasons that have nothing to do with its split.
  const MachineCpu after = machine_cpu_seconds();
  const double busy = after.busy - before.busy;
  const double own = children_cpu_seconds() - own_before;
  const double wall = now_seconds() - wall_before;
  const long cores = sysconf(_SC_NPROCESSORS_ONLN);
  double foreign = -1, steal = -1;
  if (before.busy >= 0 && after.busy >= 0 && wall > 0 && cores > 0) {
    foreign = std::max(0.0, busy - own) / (wall * double(cores));
    steal = std::max(0.0, after.steal - before.steal) / (wall * double(cores));
  }
  std::string text;
  try {
    text = read_whole_file(t.report_path);
  } catch (const FileReadError&) {
    // No report: the run failed before writing one; its exit status says why below.
  }
  TrialFigures f;
  if (!text.empty()) f = figures_from_report(text, t.report_path);
  f.foreign_cpu_share = foreign;
  f.steal_share = steal;
  if (const int sig = stop_signal()) {
    f.ok = false;
    f.error = "stopped by " + signal_name(sig) + " (see " + t.log_path + ")";
  } else if (timed_out) {
    f.ok = false;
    f.error = "killed after " + std::to_string(int(t.timeout_s)) + " s (see " + t.log_path + ")";
  } else if (!f.ok && f.error.empty()) {
    f.error = describe_wait_status(status) + " and left no report (see " + t.log_path + ")";
  } else if (!f.ok) {
    f.error += " (see " + t.log_path + ")";
  }
  return f;
}

}  // namespace ts
