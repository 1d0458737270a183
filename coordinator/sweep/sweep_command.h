// `threadsplit sweep`: measures every process x thread split of a core budget (and, on request,
// under- and over-subscribed ones and several loader thread counts) for each model and batch
// mode, R interleaved repeats each, and writes sweep.csv, sweep.json and the printed summary.
// scripts/sweep.sh wraps it and draws sweep.png from the JSON.
#pragma once

namespace ts {

// argv[1] is "sweep". Returns the exit status.
int sweep_main(int argc, char** argv);

}  // namespace ts
