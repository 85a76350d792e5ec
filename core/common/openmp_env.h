#pragma once
// OpenMP's wait policy, which LibTorch's CPU kernels inherit from libgomp.
//
// By default libgomp's idle threads spin at every barrier. That is the fastest choice only when the
// process owns every core; a server does not (gRPC threads, image decoding and a second pipeline
// stage run beside each inference team), and spinning teams then steal the cores their own work
// needs: measured here on 2 cores under load, the pipeline ran 30x slower with spinning waits than
// with passive ones (bench/results/performance.md). libgomp reads the policy once, when it is loaded,
// so it cannot be set from main(): the program re-executes itself with the setting instead.

namespace veriface {

// Returns at once when OMP_WAIT_POLICY is already set (by the operator or by an earlier call);
// otherwise sets OMP_WAIT_POLICY=PASSIVE and replaces the process with a fresh run of the same program
// and arguments (same pid). If that fails, says so on stderr and returns: the program still works.
void UsePassiveOpenMpWaits(char** argv);

}  // namespace veriface
