// The OpenMP team is sized and placed by the runtime when it starts, from the environment;
// changing it afterwards is either impossible (places, binding) or racy. So a program that
// takes --threads sets the environment and re-executes itself before any parallel region.
#pragma once
#include <string>

namespace ts {

// When the environment does not already say OMP_NUM_THREADS=threads (with OMP_PROC_BIND and
// OMP_PLACES set, and THREADSPLIT_INTER_OP=inter_op when inter_op > 1), sets
// OMP_NUM_THREADS=threads, OMP_PROC_BIND=close and OMP_PLACES to this process's allowed
// cores, and execs /proc/self/exe with argv. With inter_op > 1 teams (worker/inter_op_teams.h)
// OMP_PROC_BIND is false instead (the worker pins its teams itself: libgomp would bind every
// team from place 0) and THREADSPLIT_INTER_OP is set. Returns when nothing needed changing;
// throws std::runtime_error if the exec fails. Call it first thing in main. Prints a warning
// to stderr when inter_op x threads exceeds the cores this process may use.
void reexec_with_omp_threads(int threads, char** argv, int inter_op = 1);

// The inter-op teams the environment asks for: THREADSPLIT_INTER_OP (1 when unset). Throws
// std::invalid_argument naming the variable when it is not a whole number in 1..4096, or
// when it is above 1 while OMP_PROC_BIND binds (is not "false").
int inter_op_from_environment();

// "OMP_NUM_THREADS=2 OMP_PROC_BIND=close OMP_PLACES={0},{1}" as this process sees it.
std::string omp_environment_summary();

}  // namespace ts
