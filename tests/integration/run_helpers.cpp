#include "run_helpers.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include "synthetic_cifar10.h"

namespace ts_test {

std::string tmp_dir() {
  std::filesystem::create_directories(TEST_TMP_DIR);
  return TEST_TMP_DIR;
}

std::string test_data_dir() {
  const std::string real = CIFAR10_TEST_DIR;
  if (std::filesystem::exists(real + "/data_batch_1.bin") &&
      std::filesystem::exists(real + "/test_batch.bin"))
    return real;
  const std::string synth = tmp_dir() + "/synthetic";
  ts::ensure_synthetic_cifar10(synth, 7);
  return synth;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Process::out() const { return read_text(out_path); }
std::string Process::err() const { return read_text(err_path); }

Process start(const std::string& name, const std::vector<std::string>& argv,
              const std::vector<std::string>& env) {
  Process p;
  p.out_path = tmp_dir() + "/" + name + ".out";
  p.err_path = tmp_dir() + "/" + name + ".err";
  // Truncated here, not in the child: a caller polling out() right after start() must not
  // read the previous run's output.
  std::ofstream(p.out_path, std::ios::trunc).close();
  std::ofstream(p.err_path, std::ios::trunc).close();
  std::vector<char*> args;
  std::vector<std::string> copy = argv;
  for (auto& a : copy) args.push_back(&a[0]);
  args.push_back(nullptr);
  p.pid = fork();
  if (p.pid == 0) {
    const int out = open(p.out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    const int err = open(p.err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (out < 0 || err < 0) _exit(125);
    dup2(out, 1);
    dup2(err, 2);
    for (const auto& e : env) {
      const size_t eq = e.find('=');
      const std::string k = e.substr(0, eq), v = e.substr(eq + 1);
      if (v.empty()) unsetenv(k.c_str());
      else setenv(k.c_str(), v.c_str(), 1);
    }
    execv(args[0], args.data());
    _exit(127);
  }
  return p;
}

int wait_exit(Process& p, double timeout_s) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  int st = 0;
  while (true) {
    const pid_t r = waitpid(p.pid, &st, WNOHANG);
    if (r == p.pid) break;
    if (r < 0) return -1;
    if (std::chrono::steady_clock::now() > until) {
      kill(p.pid, SIGKILL);
      waitpid(p.pid, &st, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return -1;
}

bool wait_until(const std::function<bool()>& cond, double timeout_s) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < until) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return cond();
}

bool process_gone(pid_t pid) {
  const std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return true;
  const size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z';
}

std::vector<std::string> coordinator_args(const std::vector<std::string>& extra) {
  std::vector<std::string> a = {THREADSPLIT_BIN, "--data", test_data_dir(), "--worker-bin",
                                THREADSPLIT_WORKER_BIN, "--listen", "127.0.0.1", "--port", "0"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

std::vector<pid_t> worker_pids(const std::string& out) {
  std::vector<pid_t> pids;
  static const std::regex line(R"(threadsplit: worker (\d+) pid (\d+) on )");
  for (auto it = std::sregex_iterator(out.begin(), out.end(), line); it != std::sregex_iterator(); ++it) {
    const size_t rank = std::stoul((*it)[1]);
    if (pids.size() <= rank) pids.resize(rank + 1, -1);
    pids[rank] = pid_t(std::stol((*it)[2]));
  }
  return pids;
}

std::vector<pid_t> wait_for_workers(const std::function<std::string()>& out, size_t n, double timeout_s) {
  std::vector<pid_t> pids;
  wait_until(
      [&] {
        pids = worker_pids(out());
        if (pids.size() != n) return false;
        for (pid_t p : pids)
          if (p <= 0) return false;
        return true;
      },
      timeout_s);
  return pids;
}

std::vector<pid_t> wait_for_workers(const Process& coord, size_t n, double timeout_s) {
  return wait_for_workers([&] { return coord.out(); }, n, timeout_s);
}

std::string fresh_dir(const std::string& name) {
  const std::string d = tmp_dir() + "/" + name;
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

void random_pause(double lo_s, double hi_s) {
  std::random_device rd;
  std::uniform_real_distribution<double> u(lo_s, hi_s);
  std::this_thread::sleep_for(std::chrono::duration<double>(u(rd)));
}

int steps_done(const std::string& out) {
  static const std::regex bar(R"(epoch (\d+)/\d+ \[[^\]]*\] (\d+)/\d+)");
  std::map<long, int> last_in_epoch;
  for (auto it = std::sregex_iterator(out.begin(), out.end(), bar); it != std::sregex_iterator(); ++it) {
    int& d = last_in_epoch[std::stol((*it)[1])];
    d = std::max(d, std::stoi((*it)[2]));
  }
  int sum = 0;
  for (const auto& [epoch, d] : last_in_epoch) sum += d;
  return sum;
}

bool wait_for_random_step(const Process& coord, int lo, int hi, double timeout_s) {
  std::random_device rd;
  const int target = std::uniform_int_distribution<int>(lo, hi)(rd);
  bool reached = false;
  wait_until(
      [&] {
        reached = steps_done(coord.out()) >= target;
        return reached || process_gone(coord.pid);
      },
      timeout_s);
  return reached;
}

bool all_gone(const std::vector<pid_t>& pids) {
  for (pid_t p : pids)
    if (p > 0 && !process_gone(p)) return false;
  return true;
}

void kill_all(const std::vector<pid_t>& pids) {
  for (pid_t p : pids)
    if (p > 0 && !process_gone(p)) kill(p, SIGKILL);
}

}  // namespace ts_test
