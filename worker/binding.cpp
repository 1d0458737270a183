#include "binding.h"

#include <oneapi/dnnl/dnnl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "core_set.h"
#include "model.h"
#include "process_facts.h"
#include "wire_format.h"

namespace ts {

threadsplit::Binding read_binding() {
  threadsplit::Binding b;
  const CoreSet mine = CoreSet::of_this_process();
  for (int c : mine.cores()) b.add_cores(c);
  b.set_omp_threads(omp_team_size());
  const char* places = std::getenv("OMP_PLACES");
  const char* bind = std::getenv("OMP_PROC_BIND");
  b.set_omp_places(places ? places : "");
  b.set_omp_proc_bind(bind ? bind : "");
  b.set_hostname(host_name());
  b.set_pid(int(getpid()));
  b.set_process_threads(process_thread_count());
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
  return v;
}

}  // namespace ts
