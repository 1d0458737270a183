#include "worker_launcher.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "stop_signals.h"
#include "timing.h"

extern char** environ;

namespace ts {

namespace {

// Variables the launcher owns: inherited values would fight the binding it sets, or point a
// spawned worker at another run's TLS files (the coordinator sets THREADSPLIT_TLS_* itself,
// server_security.h, and sets none for a plain run).
bool replaced_variable(const char* entry) {
  static const char* const kNames[] = {"OMP_NUM_THREADS", "OMP_PLACES", "OMP_PROC_BIND",
                                       "GOMP_CPU_AFFINITY", "KMP_AFFINITY", "THREADSPLIT_INTER_OP", "THREADSPLIT_MEMBIND",
                                       "THREADSPLIT_TOKEN", "THREADSPLIT_RANK",
                                       "THREADSPLIT_RUN_ID", "THREADSPLIT_TLS_CA", "THREADSPLIT_SHM_FD",
                                       "THREADSPLIT_TLS_CERT", "THREADSPLIT_TLS_KEY"};
  for (const char* name : kNames) {
    const size_t n = std::strlen(name);
    if (std::strncmp(entry, name, n) == 0 && entry[n] == '=') return true;
  }
  return false;
}

// What the child reports through the close-on-exec pipe when it fails before exec.
struct ChildFailure {
  int stage;  // 1 affinity, 2 prctl, 3 parent gone, 4 exec, 5 signal settings
  int err;
};

}  // namespace

std::vector<std::string> worker_environment(const WorkerLaunch& launch) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e)
    if (!replaced_variable(*e)) env.emplace_back(*e);
  env.push_back("OMP_NUM_THREADS=" + std::to_string(launch.omp_threads));
  env.push_back("OMP_PLACES=" + launch.cores.omp_places());
  // Several teams pin themselves (worker/inter_op_teams.h): libgomp would bind them all from
  // the first place.
  env.push_back(launch.inter_op > 1 ? "OMP_PROC_BIND=false" : "OMP_PROC_BIND=close");
  if (launch.inter_op > 1) env.push_back("THREADSPLIT_INTER_OP=" + std::to_string(launch.inter_op));
  if (!launch.memory.empty()) env.push_back("THREADSPLIT_MEMBIND=" + launch.memory);
  for (const auto& e : launch.extra_env) env.push_back(e);
  return env;
}

pid_t launch_worker(const WorkerLaunch& launch) {
  if (launch.cores.empty()) throw std::invalid_argument("a worker needs at least one core");
  // Everything the child needs is built here: between fork and exec only async-signal-safe
  // calls are allowed (the parent has gRPC threads that may hold malloc's locks).
  std::vector<std::string> env_strings = worker_environment(launch);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(&e[0]);
  envp.push_back(nullptr);
  std::vector<std::string> arg_strings;
  arg_strings.push_back(launch.program);
  arg_strings.insert(arg_strings.end(), launch.args.begin(), launch.args.end());
  std::vector<char*> argv;
  for (auto& a : arg_strings) argv.push_back(&a[0]);
  argv.push_back(nullptr);

  int max_core = 0;
  for (int c : launch.cores.cores()) max_core = c > max_core ? c : max_core;
  const size_t ncpus = size_t(max_core) + 1;
  cpu_set_t* mask = CPU_ALLOC(ncpus);
  const size_t mask_bytes = CPU_ALLOC_SIZE(ncpus);
  CPU_ZERO_S(mask_bytes, mask);
  for (int c : launch.cores.cores()) CPU_SET_S(size_t(c), mask_bytes, mask);

  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    CPU_FREE(mask);
    throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    const int err = errno;
    CPU_FREE(mask);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    throw std::runtime_error(std::string("fork: ") + std::strerror(err));
  }
  if (pid == 0) {
    close(pipe_fds[0]);
    ChildFailure f{0, 0};
    if (sched_setaffinity(0, mask_bytes, mask) != 0) {
      f = {1, errno};
    } else if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
      f = {2, errno};
    } else if (getppid() != parent) {
      // The coordinator died between fork and prctl: nobody would kill us later.
      f = {3, 0};
    } else if (!prepare_child_signals(true)) {
      // SIGINT, SIGTERM and SIGHUP are the coordinator's to act on (stop_signals.h): it
      // stops its workers after saving, or kills them on a second signal.
      f = {5, errno};
    } else {
      execve(argv[0], argv.data(), envp.data());
      f = {4, errno};
    }
    ssize_t ignored = write(pipe_fds[1], &f, sizeof f);
    (void)ignored;
    _exit(127);
  }
  CPU_FREE(mask);
  close(pipe_fds[1]);
  ChildFailure f{0, 0};
  ssize_t got;
  do {
    got = read(pipe_fds[0], &f, sizeof f);
  } while (got < 0 && errno == EINTR);
  close(pipe_fds[0]);
  if (got == ssize_t(sizeof f)) {
    waitpid(pid, nullptr, 0);
    static const char* const kStage[] = {"", "setting its affinity to cores ",
                                         "prctl(PR_SET_PDEATHSIG)", "checking its parent",
                                         "exec of ", "setting its signal dispositions"};
    std::string what = kStage[f.stage];
    if (f.stage == 1) what += launch.cores.to_string();
    if (f.stage == 4) what += launch.program;
    throw std::runtime_error("worker failed " + what + ": " +
                             (f.err ? std::strerror(f.err) : "coordinator gone"));
  }
  register_child(pid, false);
  return pid;  // EOF: exec succeeded and closed the pipe
}

bool worker_exited(pid_t pid, int* status) {
  int st = 0;
  const pid_t r = waitpid(pid, &st, WNOHANG);
  if (r == pid) {
    unregister_child(pid);
    if (status) *status = st;
    return true;
  }
  return false;
}

int stop_worker(pid_t pid, double grace_s) {
  const double until = now_seconds() + grace_s;
  int st = 0;
  while (true) {
    const pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      unregister_child(pid);
      return st;
    }
    if (r < 0) return -1;
    if (now_seconds() >= until) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid, SIGKILL);
  const pid_t r = waitpid(pid, &st, 0);
  unregister_child(pid);
  return r == pid ? st : -1;
}

std::string describe_wait_status(int status) {
  if (status < 0) return "was not our child";
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return "was killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
           strsignal(WTERMSIG(status)) + ")";
  return "stopped (status " + std::to_string(status) + ")";
}

}  // namespace ts
