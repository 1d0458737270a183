// The OpenMP team is sized and placed by the runtime when it starts, from the environment;
// changing it afterwards is either impossible (places, binding) or racy. So a program that
// takes --threads sets the environment and re-executes itself before any parallel region.
#pragma once
#include <string>

namespace ts {

// When the environment does not already say OMP_NUM_THREADS=threads (with OMP_PROC_BIND and
// OMP_PLACES set), sets OMP_NUM_THREADS=threads, OMP_PROC_BIND=close and OMP_PLACES to this
// process's allowed cores, and execs /proc/self/exe with argv. Returns when nothing needed
// changing; throws std::runtime_error if the exec fails. Call it first thing in main.
// Prints a warning to stderr when threads exceeds the cores this process may use.
void reexec_with_omp_threads(int threads, char** argv);

// "OMP_NUM_THREADS=2 OMP_PROC_BIND=close OMP_PLACES={0},{1}" as this process sees it.
std::string omp_environment_summary();

}  // namespace ts
