#include "binding.h"

#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "build_info.h"
#include "inter_op_teams.h"
#include "memory_policy.h"
#include "model.h"
#include "process_facts.h"
#include "topology.h"
#include "wire_checks.h"

namespace ts {

namespace {

CoreSet team_union() {
  CoreSet all;
  for (const CoreSet& c : omp_thread_cores()) all = CoreSet::united(all, c);
  return all.sorted();
}

}  // namespace

std::vector<CoreSet> omp_thread_cores() {
  std::vector<CoreSet> masks(static_cast<size_t>(omp_team_size()));
#pragma omp parallel
  {
    const int t = omp_get_thread_num();
    CoreSet mine = CoreSet::of_this_process();
#pragma omp critical
    if (size_t(t) < masks.size()) masks[size_t(t)] = std::move(mine);
  }
  return masks;
}

threadsplit::Binding read_binding(InterOpTeams* teams) {
  threadsplit::Binding b;
  std::vector<std::vector<CoreSet>> lanes;
  if (teams && teams->lanes() > 1) lanes = teams->thread_cores();
  else lanes.push_back(omp_thread_cores());
  CoreSet all = CoreSet::of_process_threads(getpid());
  for (const std::vector<CoreSet>& team : lanes) {
    CoreSet of_team;
    for (const CoreSet& c : team) {
      all = CoreSet::united(all, c);
      of_team = CoreSet::united(of_team, c);
      b.add_omp_thread_cores(c.to_string());
    }
    b.add_team_cores(of_team.sorted().to_string());
  }
  const CoreSet sorted = all.sorted();
  for (int c : sorted.cores()) b.add_cores(c);
  b.set_omp_threads(int(lanes[0].size()));
  b.set_inter_op(int(lanes.size()));
  const char* places = std::getenv("OMP_PLACES");
  const char* bind = std::getenv("OMP_PROC_BIND");
  b.set_omp_places(places ? places : "");
  b.set_omp_proc_bind(bind ? bind : "");
  b.set_hostname(host_name());
  b.set_pid(int(getpid()));
  b.set_process_threads(process_thread_count());
  b.set_memory_policy(current_memory_policy());
  try {
    for (int n : Topology::of_this_machine().numa_nodes_of(sorted)) b.add_numa_nodes(n);
  } catch (const std::exception&) {
    // No topology: the report shows no node rather than a wrong one.
  }
  return b;
}

threadsplit::Versions library_versions() {
  threadsplit::Versions v;
  const dnnl_version_t* d = dnnl_version();
  v.set_onednn(std::to_string(d->major) + "." + std::to_string(d->minor) + "." +
               std::to_string(d->patch));
  v.set_grpc(grpc_version());
  v.set_protobuf(protobuf_version());
  v.set_compiler(compiler_version());
  v.set_threadsplit(threadsplit_version());
  v.set_networks(networks_fingerprint());
  return v;
}

HelperThreadCores::HelperThreadCores(const CoreSet& all) : own_(CoreSet::of_this_process()) {
  set_calling_thread_cores(all.empty() ? team_union() : all);
}

HelperThreadCores::~HelperThreadCores() { set_calling_thread_cores(own_); }

}  // namespace ts
