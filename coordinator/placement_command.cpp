#include "placement_command.h"

#include <cstdio>
#include <stdexcept>
#include <string>

#include "cli_flags.h"
#include "core_set.h"
#include "placement.h"
#include "topology.h"
#include "usage_error.h"

namespace ts {

namespace {

struct PlacementOptions {
  std::string topology, cores, placement = "numa", smt = "avoid";
  int procs = 0, inter_op = 0, threads = 0;
  bool help = false;
};

std::unique_ptr<CLI::App> placement_app(PlacementOptions& o) {
  auto app = cli::new_app("threadsplit placement",
                          "usage: threadsplit placement [--topology SPEC] [--cores LIST] [--procs P] "
                          "[--inter-op I] [--threads T] [--placement numa|compact|spread] [--smt avoid|use]\n",
                          "Prints the machine's topology and where each worker of a split would go "
                          "(its cores, teams, NUMA nodes and memory policy), as a run would place "
                          "them; starts nothing. Without --procs/--threads: every split P x I x T of "
                          "the cores.");
  cli::group(*app, "Flags");
  app->add_option("--topology", o.topology,
                  "a hwloc synthetic description ('pack:2 numa:2 l3:2 core:8 pu:2') or an XML file "
                  "written by `lstopo FILE.xml` (default: this machine)")
      ->type_name("SPEC");
  app->add_option("--cores", o.cores, "the cores to split (default: all of the topology's; on this "
                                      "machine, this process's affinity)")->type_name("LIST");
  app->add_option("--procs", o.procs, "worker processes")->type_name("P")->transform(cli::at_least(1, 4096));
  app->add_option("--inter-op", o.inter_op, "teams per worker")->type_name("I")->transform(cli::at_least(1, 4096));
  app->add_option("--threads", o.threads, "threads per team")->type_name("T")->transform(cli::at_least(1, 4096));
  app->add_option("--placement", o.placement, "numa, compact or spread (see threadsplit --help)")
      ->type_name("numa|compact|spread")->capture_default_str();
  app->add_option("--smt", o.smt, "avoid or use")->type_name("avoid|use")->capture_default_str();
  cli::add_help(*app, "Flags");
  return app;
}

void print_plan(const PlacementPlan& p, int P, int I, int T) {
  std::printf("%dx%dx%d:\n", P, I, T);
  for (size_t r = 0; r < p.workers.size(); ++r) {
    const WorkerPlace& w = p.workers[r];
    std::string teams;
    if (w.teams.size() > 1)
      for (size_t i = 0; i < w.teams.size(); ++i) teams += (i ? " | " : "; teams ") + w.teams[i].to_string();
    std::printf("  worker %zu: %s%s\n", r, describe(w).c_str(), teams.c_str());
  }
  for (const std::string& n : p.notes) std::printf("  note: %s\n", n.c_str());
}

}  // namespace

int placement_main(int argc, char** argv) {
  PlacementOptions o;
  try {
    const auto app = placement_app(o);
    if (!cli::parse(*app, argc, argv, 2)) {
      std::fputs(app->help().c_str(), stdout);
      return 0;
    }
    const PlacementPolicy policy = parse_placement(o.placement);
    const SmtPolicy smt = parse_smt(o.smt);
    const Topology machine = o.topology.empty() ? Topology::of_this_machine() : Topology::load(o.topology);
    CoreSet cores = machine.all_cores();
    if (!o.cores.empty()) cores = CoreSet::parse(o.cores);
    else if (o.topology.empty()) cores = CoreSet::of_this_process();
    const Topology t = machine.restricted_to(cores);
    const int n = placeable_threads(t, smt);
    std::printf("machine: %s (%s)\n", machine.summary().c_str(), machine.source().c_str());
    std::printf("cores %s: %s; %d threads before %s\n", t.all_cores().sorted().to_string().c_str(),
                t.summary().c_str(), n, smt == SmtPolicy::kAvoid ? "SMT siblings" : "oversubscription");
    std::printf("placement %s, smt %s\n", placement_name(policy), smt_name(smt));
    if (o.procs > 0 || o.threads > 0) {
      const int I = o.inter_op > 0 ? o.inter_op : 1;
      const int P = o.procs > 0 ? o.procs : std::max(1, n / (I * o.threads));
      const int T = o.threads > 0 ? o.threads : std::max(1, n / (P * I));
      print_plan(place(t, P, I, T, policy, smt), P, I, T);
      return 0;
    }
    for (int P = 1; P <= n; ++P)
      for (int I = 1; P * I <= n; ++I) {
        if (o.inter_op > 0 && I != o.inter_op) continue;
        if (n % (P * I) != 0) continue;
        print_plan(place(t, P, I, n / (P * I), policy, smt), P, I, n / (P * I));
      }
    return 0;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "threadsplit placement: %s\n", e.what());
    return 2;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "threadsplit placement: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "threadsplit placement: %s\n", e.what());
    return 1;
  }
}

}  // namespace ts
