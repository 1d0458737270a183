#include "trial_runner.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "timing.h"

namespace ts {

std::string self_executable() {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "threadsplit";
  buf[n] = '\0';
  return buf;
}

std::vector<std::string> point_args(const SweepPoint& p) {
  std::vector<std::string> a = {"--model", p.model,
                                "--procs", std::to_string(p.procs),
                                "--threads", std::to_string(p.threads),
                                "--loader-threads", std::to_string(p.loader_threads),
                                "--steps", std::to_string(p.steps + p.warmup_steps),
                                "--warmup-steps", std::to_string(p.warmup_steps),
                                "--eval-every", "0",
                                "--progress", "off"};
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
    execv(cargs[0], cargs.data());
    _exit(127);
  }
  const double until = now_seconds() + t.timeout_s;
  int status = 0;
  bool timed_out = false;
  while (true) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0) break;
    if (now_seconds() > until) {
      // SIGTERM first: the coordinator then stops its workers; SIGKILL if it does not go.
      kill(pid, SIGTERM);
      const double grace = now_seconds() + 5;
      while (waitpid(pid, &status, WNOHANG) == 0 && now_seconds() < grace)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::ifstream in(t.report_path);
  std::stringstream text;
  text << in.rdbuf();
  TrialFigures f;
  if (!text.str().empty()) f = figures_from_report(text.str());
  if (timed_out) {
    f.ok = false;
    f.error = "killed after " + std::to_string(int(t.timeout_s)) + " s (see " + t.log_path + ")";
  } else if (!f.ok && f.error.empty()) {
    f.error = "exited with status " +
              std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)) +
              " and no report (see " + t.log_path + ")";
  } else if (!f.ok) {
    f.error += " (see " + t.log_path + ")";
  }
  return f;
}

}  // namespace ts
