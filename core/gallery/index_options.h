#pragma once
// Which index a gallery searches with, and its parameters (gallery.index.* in config/veriface.yaml).
// Plain values, so that the server's configuration holds them.

#include <cstdint>
#include <functional>
#include <string>

namespace veriface {

struct IndexOptions {
  // "exact": the fp32 scan of every template; "exact-int8": the same over int8 codes with a per-vector
  // scale (4x fewer bytes read, candidates re-scored in fp32); "ivf-int8": those codes in inverted lists
  // (IvfInt8Index), of which a query reads ivf_nprobe / ivf_lists; "faiss": an approximate faiss index
  // built from `faiss_factory`.
  std::string type = "exact";
  // ivf-int8: k-means lists, and lists visited per query (more: slower, closer to exact). An eighth of
  // the lists found the exact top-1 for 99.5% of queries at 1M and 10M templates (bench/results/
  // index_ivf.md); 1024 lists build in about a minute at 10M, 4096 in about five.
  int64_t ivf_lists = 1024;
  int ivf_nprobe = 128;
  // A faiss index_factory description, e.g. "IVF4096,SQ8" (inverted lists over 8-bit codes), "HNSW32"
  // (a graph over the fp32 vectors), "IVF4096,PQ32" (32-byte codes, where memory is short).
  std::string faiss_factory = "IVF1024,SQ8";
  int nprobe = 32;     // faiss IVF: inverted lists visited per query
  int ef_search = 64;  // HNSW: candidate list size per query
  // Galleries with fewer templates than this are searched exactly whatever `type` says: an approximate
  // index buys nothing there and needs data to train on.
  int64_t exact_below = 100'000;
  // Approximate answers are re-scored in fp32 over this many times k candidates, so that their order
  // (and the top-1 most of all) is exact among the candidates.
  int rerank_factor = 4;
  // Called about every tenth of the way while an approximate index is built (at start-up that can take
  // minutes for millions of templates): the gallery's name, templates added so far, and the total. Not a
  // setting; may be empty.
  std::function<void(const std::string& gallery, int64_t added, int64_t total)> on_build_progress;
};

}  // namespace veriface
