#pragma once
// How long OpenMP's idle threads spin, which LibTorch's CPU kernels inherit from libgomp.
//
// libgomp's default is to spin about 3 ms at every barrier before sleeping. That wins when the process
// owns every core, but a server does not (gRPC threads, image decoding and a second pipeline stage run
// beside each inference team): on 2 busy cores the pipeline ran 30x slower with those spins. Sleeping at
// once (OMP_WAIT_POLICY=PASSIVE) fixes that but costs a wake-up per parallel region: the batch-1
// descriptor went from 5 to 14 ms and MTCNN on 250x250 from 18 to 31 ms on an idle machine. A short
// spin (~0.3 ms) keeps the back-to-back layers of one forward pass on the fast path and still lets
// the threads sleep almost at once between requests (bench/README.md has the numbers). libgomp reads
// these settings once, when it is loaded, so they cannot be set from main(): the program re-executes
// itself with them instead.

namespace veriface {

// Returns at once when OMP_WAIT_POLICY or GOMP_SPINCOUNT is already set (by the operator or by an
// earlier call); otherwise sets OMP_WAIT_POLICY=PASSIVE with GOMP_SPINCOUNT=30000 (libgomp lets the
// spin count override the policy's) and replaces the process with a fresh run of the same program and
// arguments (same pid). If that fails, says so on stderr and returns: the program still works.
void UseShortOpenMpSpins(char** argv);

}  // namespace veriface
