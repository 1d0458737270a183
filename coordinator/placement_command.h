// `threadsplit placement`: where the workers of a split would go, on this machine or on one
// described to hwloc (a synthetic description or an XML file from `lstopo FILE.xml`), without
// starting anything. With no split given, every split P x I x T of the machine's cores.
#pragma once

namespace ts {

int placement_main(int argc, char** argv);

}  // namespace ts
