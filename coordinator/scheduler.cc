// Gang scheduler. See scheduler.h for the rules; this file explains the
// choices that make them cheap.
//
// Shape of one call:
//  - Jobs are visited in (priority desc, seq asc, input index asc) order. The
//    input index makes the order total, so equal keys stay deterministic.
//  - Free capacity of the ready nodes is copied once into flat arrays (one
//    per resource) that are scanned per job and decremented as jobs are
//    placed. Per-job work is one linear scan; scratch buffers are reused
//    across jobs, so the only allocations on the hot path are the ones the
//    result itself needs (replica list, GPU indices, reasons).
//  - Single-replica jobs (the common case) take a branch-light best-fit scan
//    with no divisions. Multi-replica jobs count how many replicas each node
//    holds and take the nodes that hold the most first: for identical
//    replicas that greedy choice needs the fewest nodes. Only the top
//    `replicas` candidates are ordered (nth_element), never all nodes.
//  - Upper bounds of the largest free cpus/memory/GPUs on one ready node let
//    a job that cannot fit skip the scan: once the cluster is full, each
//    further job costs O(1) instead of O(nodes). The bounds only ever shrink
//    in truth (placing never frees capacity), so a stale bound is still an
//    upper bound; it is refreshed exactly when a reason must quote it.
//  - "Never fits" is decided against the node totals, ready or not, and only
//    after placement failed (a job that was just placed obviously fits), so
//    the common path never pays for it.
//
// "Least free capacity" (best fit) compares free GPUs first, then cpus, then
// memory. GPUs are the scarce resource: a CPU-only job lands on a node whose
// GPUs are already taken (or that has none) before it fragments a free GPU
// node.
//
// GPU choice within a node (GpuChooser) works on 64-bit masks: a candidate set
// is one uint64_t, its NVLink closure a few ANDs, its NUMA spread a popcount.
// It looks, in order, for: a fully linked set inside one NUMA group; a fully
// linked set across groups; any set below one PCIe switch; any set inside one
// NUMA group; the fewest groups (largest groups whole, the remainder from the
// group that fits it best). Fully linked sets are enumerated depth first in
// index order with a popcount prune and a fixed step budget, so odd topologies
// cost a bounded amount and the result stays deterministic; on real ones
// (NVLink pairs or quads, NVSwitch all-to-all) the prune ends every dead branch
// at once. Sets that are not fully linked are grown greedily: next the GPU
// linked to the ones already taken, else the one stranding the fewest free
// peers, else one below a PCIe switch already used, else one from the switch
// that best fits what is still needed (the smallest that holds it, else the
// largest), else the one that starts a linked group, else the lowest index.
#include "coordinator/scheduler.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"

namespace gangway::coordinator {
namespace {

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr int32_t kMaxGpusPerNode = 64;

uint64_t Bit(int i) { return uint64_t{1} << i; }

// Fully-linked-set search steps per choice. NVLink pairs and quads need a
// few dozen, an 8-GPU NVSwitch box at most C(8,4) = 70. Where nearly every
// subset is fully linked (a large all-to-all node) the search would go on
// comparing equals; the budget stops it with the best found so far, which
// includes the lowest-index sets because they are visited first.
constexpr int kCliqueSearchBudget = 512;

// How good a set of GPUs is for one replica; smaller is better, compared in
// field order. `set` compares by lowest index: the set holding the lowest
// GPU where two sets differ wins.
struct GpuSetScore {
  int32_t numa_groups = 0;
  int32_t switches = 0;         // PCIe switch groups the set touches
  int32_t stranded = 0;         // links from the set to free GPUs left outside it
  int32_t switch_leftover = 0;  // free GPUs left below the switches it touches
  int32_t leftover = 0;         // free GPUs left in the NUMA groups it touches
  uint64_t set = 0;

  bool BetterThan(const GpuSetScore& o) const {
    if (numa_groups != o.numa_groups) return numa_groups < o.numa_groups;
    if (switches != o.switches) return switches < o.switches;
    if (stranded != o.stranded) return stranded < o.stranded;
    if (switch_leftover != o.switch_leftover) return switch_leftover < o.switch_leftover;
    if (leftover != o.leftover) return leftover < o.leftover;
    const uint64_t differ = set ^ o.set;
    return (set & differ & (~differ + 1)) != 0;
  }
};

// Chooses `k` of the `free` GPUs (popcount(free) >= k) of a node wired as
// `topology`. One instance per choice; see the file comment for the order.
class GpuChooser {
 public:
  GpuChooser(const GpuTopology& topology, uint64_t free, int k)
      : t_(topology), free_(free), k_(k) {}

  uint64_t Choose() {
    if (k_ <= 0) return 0;
    if (std::popcount(free_) <= k_) return free_;
    for (uint64_t group : t_.numa_groups) {  // fully linked, one group
      const uint64_t avail = free_ & group;
      if (std::popcount(avail) >= k_) SearchCliques(0, 0, avail);
    }
    if (found_) return best_.set;
    SearchCliques(0, 0, free_);  // fully linked, across groups
    if (found_) return best_.set;
    if (t_.switch_groups.size() > 1) {
      for (uint64_t group : t_.switch_groups) {  // one PCIe switch
        const uint64_t avail = free_ & group;
        if (std::popcount(avail) >= k_) Consider(Grow(0, avail, k_));
      }
      if (found_) return best_.set;
    }
    for (uint64_t group : t_.numa_groups) {  // one NUMA group
      const uint64_t avail = free_ & group;
      if (std::popcount(avail) >= k_) Consider(Grow(0, avail, k_));
    }
    if (found_) return best_.set;
    return FewestGroups();
  }

 private:
  GpuSetScore Score(uint64_t set) const {
    GpuSetScore score;
    score.set = set;
    uint64_t groups = 0;
    uint64_t switches = 0;
    for (uint64_t m = set; m != 0; m &= m - 1) {
      const int g = std::countr_zero(m);
      groups |= Bit(t_.group_of[g]);
      switches |= Bit(t_.switch_of[g]);
      score.stranded += std::popcount(t_.peers[g] & free_ & ~set);
    }
    score.numa_groups = std::popcount(groups);
    score.switches = std::popcount(switches);
    for (; switches != 0; switches &= switches - 1) {
      score.switch_leftover +=
          std::popcount(t_.switch_groups[std::countr_zero(switches)] & free_ & ~set);
    }
    for (; groups != 0; groups &= groups - 1) {
      score.leftover += std::popcount(t_.numa_groups[std::countr_zero(groups)] & free_ & ~set);
    }
    return score;
  }

  void Consider(uint64_t set) {
    const GpuSetScore score = Score(set);
    if (!found_ || score.BetterThan(best_)) best_ = score;
    found_ = true;
  }

  // Every k-set of `candidates` whose members are pairwise linked, extending
  // `chosen` (size `size`, pairwise linked, every candidate linked to all of
  // it and above its highest member).
  void SearchCliques(uint64_t chosen, int size, uint64_t candidates) {
    if (size == k_) return Consider(chosen);
    while (candidates != 0 && std::popcount(candidates) >= k_ - size) {
      if (--budget_ < 0) return;
      const int g = std::countr_zero(candidates);
      candidates &= candidates - 1;
      SearchCliques(chosen | Bit(g), size + 1, candidates & t_.peers[g]);
    }
  }

  // `chosen` plus `need` GPUs of `avail`. Each next GPU is, by preference:
  // linked to one already chosen; one that would strand the fewest free
  // peers (peers still in `avail` count as strandable only beyond what the
  // remaining picks can take); one below a PCIe switch already used; one
  // from the switch that best fits the `need` still open (SwitchFit); one
  // with the most peers left in `avail` (it starts a linked group the next
  // picks complete); the lowest.
  uint64_t Grow(uint64_t chosen, uint64_t avail, int need) const {
    avail &= ~chosen;
    uint64_t used_switches = 0;
    for (uint64_t m = chosen; m != 0; m &= m - 1) {
      used_switches |= Bit(t_.switch_of[std::countr_zero(m)]);
    }
    for (; need > 0; --need) {
      int best = -1;
      std::tuple<int, int, int, int> best_key;
      for (uint64_t m = avail; m != 0; m &= m - 1) {
        const int g = std::countr_zero(m);
        const uint64_t open = t_.peers[g] & free_ & ~chosen;
        const int in_reach = std::popcount(open & avail);
        const int stranded = std::popcount(open & ~avail) + std::max(0, in_reach - (need - 1));
        const int fit = (used_switches & Bit(t_.switch_of[g])) != 0
                            ? std::numeric_limits<int>::min()
                            : SwitchFit(t_.switch_of[g], avail, need);
        const std::tuple<int, int, int, int> key{(t_.peers[g] & chosen) == 0, stranded, fit,
                                                 -in_reach};
        if (best < 0 || key < best_key) {
          best = g;
          best_key = key;
        }
      }
      chosen |= Bit(best);
      avail &= ~Bit(best);
      used_switches |= Bit(t_.switch_of[best]);
    }
    return chosen;
  }

  // How well starting on switch group `s` suits `need` more GPUs of `avail`;
  // smaller is better: the smallest group that holds them all, else the
  // largest. Always above INT_MIN, which marks a switch already in use.
  int SwitchFit(int s, uint64_t avail, int need) const {
    const int n = std::popcount(avail & t_.switch_groups[s]);
    return n >= need ? n - kMaxGpusPerNode - 1 : kMaxGpusPerNode - n;
  }

  // The fewest NUMA groups: the largest groups whole while the rest does not
  // fit in one group, then the smallest group that holds the rest.
  uint64_t FewestGroups() const {
    uint64_t chosen = 0;
    uint64_t unused =
        (t_.numa_groups.size() >= 64) ? ~uint64_t{0} : Bit(std::ssize(t_.numa_groups)) - 1;
    int need = k_;
    while (need > 0) {
      int largest = -1, fits = -1;
      int largest_free = 0, fits_free = 0;
      for (uint64_t m = unused; m != 0; m &= m - 1) {
        const int i = std::countr_zero(m);
        const int n = std::popcount(free_ & t_.numa_groups[i]);
        if (n > largest_free) largest = i, largest_free = n;
        if (n >= need && (fits < 0 || n < fits_free)) fits = i, fits_free = n;
      }
      if (fits >= 0) return Grow(chosen, free_ & t_.numa_groups[fits], need);
      chosen |= free_ & t_.numa_groups[largest];
      unused &= ~Bit(largest);
      need -= largest_free;
    }
    return chosen;
  }

  const GpuTopology& t_;
  const uint64_t free_;
  const int k_;
  int budget_ = kCliqueSearchBudget;
  bool found_ = false;
  GpuSetScore best_;
};

// Resources of one replica (procs_per_node processes) or of one node.
struct Resources {
  int64_t milli_cpus = 0;
  int64_t memory_bytes = 0;
  int64_t gpus = 0;
};

int64_t SaturatingMul(int64_t a, int64_t b) {
  int64_t out = 0;
  return __builtin_mul_overflow(a, b, &out) ? kInt64Max : out;
}

// Valid GPU indices are [0, total_gpus); bits above that describe GPUs that do
// not exist, so they are never handed out.
uint64_t UsableGpuMask(const NodeView& node) {
  const int32_t total = std::clamp(node.total_gpus, 0, kMaxGpusPerNode);
  const uint64_t valid = total == kMaxGpusPerNode ? ~uint64_t{0} : (uint64_t{1} << total) - 1;
  return node.free_gpu_mask & valid;
}

// ---- Formatting for reasons (cold path). ----

// 2000 -> "2", 1500 -> "1.5", 250 -> "0.25": cpus as a person writes them.
std::string FormatCpus(int64_t milli) {
  std::string out = absl::StrCat(milli / 1000);
  int64_t frac = milli % 1000;
  if (frac != 0) {
    char digits[3] = {static_cast<char>('0' + frac / 100), static_cast<char>('0' + frac / 10 % 10),
                      static_cast<char>('0' + frac % 10)};
    int len = 3;
    while (digits[len - 1] == '0') --len;
    absl::StrAppend(&out, ".", absl::string_view(digits, len));
  }
  return out;
}

// Kubernetes-style binary quantities when exact (1Gi, 1536Mi), else bytes.
std::string FormatMemory(int64_t bytes) {
  static constexpr struct {
    int shift;
    const char* suffix;
  } kUnits[] = {{60, "Ei"}, {50, "Pi"}, {40, "Ti"}, {30, "Gi"}, {20, "Mi"}, {10, "Ki"}};
  for (const auto& unit : kUnits) {
    const int64_t size = int64_t{1} << unit.shift;
    if (bytes >= size && bytes % size == 0) return absl::StrCat(bytes / size, unit.suffix);
  }
  return absl::StrCat(bytes);
}

std::string FormatResources(const Resources& r) {
  return absl::StrCat("{cpus: ", FormatCpus(r.milli_cpus),
                      ", memory: ", FormatMemory(r.memory_bytes), ", gpus: ", r.gpus, "}");
}

absl::string_view Plural(int64_t n, absl::string_view one, absl::string_view many) {
  return n == 1 ? one : many;
}

// Input the scheduler cannot reason about. Spec validation should have caught
// it; failing it here keeps a bad record from waiting forever.
std::string ValidateJob(const PendingJob& job) {
  if (job.replicas < 1) return absl::StrCat("replicas must be at least 1, got ", job.replicas);
  if (job.procs_per_node < 1) {
    return absl::StrCat("procsPerNode must be at least 1, got ", job.procs_per_node);
  }
  if (job.milli_cpus < 0) {
    return absl::StrCat("cpus must not be negative, got ", job.milli_cpus, " millicpus");
  }
  if (job.memory_bytes < 0) {
    return absl::StrCat("memory must not be negative, got ", job.memory_bytes, " bytes");
  }
  if (job.gpus < 0) return absl::StrCat("gpus must not be negative, got ", job.gpus);
  return {};
}

// One candidate node for a multi-replica job.
struct Candidate {
  // What the node has left after taking `fit` replicas (the best-fit key).
  int64_t left_gpus;
  int64_t left_cpus;
  int64_t left_memory;
  int32_t slot;  // into the ready arrays
  int32_t fit;   // replicas of this job the node holds now, capped at replicas
};

// Most replicas first (fewest nodes), then least left over, then lowest slot
// (slots follow node indices, so this is "lower node index").
bool MoreReplicasThenBestFit(const Candidate& a, const Candidate& b) {
  if (a.fit != b.fit) return a.fit > b.fit;
  return std::tie(a.left_gpus, a.left_cpus, a.left_memory, a.slot) <
         std::tie(b.left_gpus, b.left_cpus, b.left_memory, b.slot);
}

class Placer {
 public:
  Placer(const ClusterSnapshot& cluster, const PlacementOptions& options)
      : cluster_(cluster), holds_left_(options.max_holding_jobs) {
    const size_t n = cluster.nodes.size();
    total_cpus_.reserve(n);
    total_memory_.reserve(n);
    total_gpus_.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      const NodeView& node = cluster.nodes[i];
      const Resources total{std::max<int64_t>(node.total_milli_cpus, 0),
                            std::max<int64_t>(node.total_memory_bytes, 0),
                            std::clamp(node.total_gpus, 0, kMaxGpusPerNode)};
      total_cpus_.push_back(total.milli_cpus);
      total_memory_.push_back(total.memory_bytes);
      total_gpus_.push_back(total.gpus);
      largest_total_.milli_cpus = std::max(largest_total_.milli_cpus, total.milli_cpus);
      largest_total_.memory_bytes = std::max(largest_total_.memory_bytes, total.memory_bytes);
      largest_total_.gpus = std::max(largest_total_.gpus, total.gpus);
      if (!node.ready) continue;
      const uint64_t mask = UsableGpuMask(node);
      node_index_.push_back(static_cast<int32_t>(i));
      free_cpus_.push_back(std::max<int64_t>(node.free_milli_cpus, 0));
      free_memory_.push_back(std::max<int64_t>(node.free_memory_bytes, 0));
      free_mask_.push_back(mask);
      free_gpus_.push_back(std::popcount(mask));
      const GpuTopology* topology = node.gpu_topology.get();
      const bool usable = options.topology_scoring && topology != nullptr &&
                          topology->gpus() == total.gpus && total.gpus > 0;
      topology_.push_back(usable ? topology : nullptr);
    }
    candidates_.reserve(node_index_.size());
    RefreshBounds();
  }

  void Decide(const PendingJob& job, JobDecision& decision) {
    if (std::string invalid = ValidateJob(job); !invalid.empty()) {
      return Fail(Verdict::kNeverFits, std::move(invalid), decision);
    }
    replicas_ = job.replicas;
    const int64_t procs = job.procs_per_node;
    if (__builtin_mul_overflow(procs, job.milli_cpus, &need_.milli_cpus) ||
        __builtin_mul_overflow(procs, job.memory_bytes, &need_.memory_bytes) ||
        __builtin_mul_overflow(procs, int64_t{job.gpus}, &need_.gpus)) {
      return Fail(Verdict::kNeverFits,
                  absl::StrCat("a replica needs more than can be counted (procsPerNode ", procs,
                               " x {cpus: ", FormatCpus(job.milli_cpus), ", memory: ",
                               FormatMemory(job.memory_bytes), ", gpus: ", job.gpus, "})"),
                  decision);
    }
    all_.milli_cpus = SaturatingMul(need_.milli_cpus, replicas_);
    all_.memory_bytes = SaturatingMul(need_.memory_bytes, replicas_);
    all_.gpus = SaturatingMul(need_.gpus, replicas_);

    // Nodes may still join, so an empty snapshot is never a verdict on the job.
    if (total_cpus_.empty()) return Fail(Verdict::kNoRoomNow, "no nodes registered", decision);
    if (std::string too_big = ExceedsLargestNode(job); !too_big.empty()) {
      return Fail(Verdict::kNeverFits, std::move(too_big), decision);
    }

    int64_t fits_now = 0;
    if (!ExceedsFreeBounds()) {
      fits_now = replicas_ == 1 ? ChooseSingle() : ChooseMany();
    }
    if (fits_now >= replicas_) return Commit(decision);

    if (std::string never = NeverFitsWhenEmpty(); !never.empty()) {
      return Fail(Verdict::kNeverFits, std::move(never), decision);
    }
    Fail(Verdict::kNoRoomNow, NoRoomReason(fits_now), decision);
    if (job.reserve && holds_left_ > 0 && Hold(decision)) --holds_left_;
  }

 private:
  static void Fail(Verdict verdict, std::string reason, JobDecision& decision) {
    decision.verdict = verdict;
    decision.reason = std::move(reason);
  }

  // Replicas of the current job that a node with this much free holds, capped
  // at replicas_. The
  // compares first: most nodes either cannot take one replica or can take all
  // of them, and neither needs a division.
  int64_t FitCount(int64_t cpus, int64_t memory, int64_t gpus) const {
    if (cpus < need_.milli_cpus || memory < need_.memory_bytes || gpus < need_.gpus) return 0;
    int64_t fit = replicas_;
    // `all_ == kInt64Max` means saturated: the shortcut cannot tell, divide.
    if (need_.milli_cpus > 0 && (cpus < all_.milli_cpus || all_.milli_cpus == kInt64Max)) {
      fit = std::min(fit, cpus / need_.milli_cpus);
    }
    if (need_.memory_bytes > 0 && (memory < all_.memory_bytes || all_.memory_bytes == kInt64Max)) {
      fit = std::min(fit, memory / need_.memory_bytes);
    }
    if (need_.gpus > 0 && (gpus < all_.gpus || all_.gpus == kInt64Max)) {
      fit = std::min(fit, gpus / need_.gpus);
    }
    return fit;
  }

  bool ExceedsFreeBounds() const {
    return node_index_.empty() || need_.milli_cpus > max_free_.milli_cpus ||
           need_.memory_bytes > max_free_.memory_bytes || need_.gpus > max_free_.gpus;
  }

  // Best fit for one replica. Leftover = free - need with the same need on
  // every node, so comparing free capacity ranks leftovers.
  int64_t ChooseSingle() {
    const size_t n = node_index_.size();
    int32_t best = -1;
    int64_t best_gpus = 0, best_cpus = 0, best_memory = 0;
    for (size_t s = 0; s < n; ++s) {
      const int64_t cpus = free_cpus_[s], memory = free_memory_[s], gpus = free_gpus_[s];
      if (cpus < need_.milli_cpus || memory < need_.memory_bytes || gpus < need_.gpus) continue;
      if (best < 0 || std::tie(gpus, cpus, memory) < std::tie(best_gpus, best_cpus, best_memory)) {
        best = static_cast<int32_t>(s);
        best_gpus = gpus;
        best_cpus = cpus;
        best_memory = memory;
      }
    }
    chosen_.clear();
    if (best < 0) return 0;
    chosen_.push_back({best, 1});
    return 1;
  }

  // Fills chosen_ with the fewest nodes that hold all replicas; returns how
  // many replicas fit now in total (>= replicas_ when chosen_ is complete).
  int64_t ChooseMany() {
    chosen_.clear();
    candidates_.clear();
    const size_t n = node_index_.size();
    int64_t total = 0;
    int32_t whole = -1;  // best-fit node that holds every replica by itself
    for (size_t s = 0; s < n; ++s) {
      const int64_t cpus = free_cpus_[s], memory = free_memory_[s], gpus = free_gpus_[s];
      const int64_t fit = FitCount(cpus, memory, gpus);
      if (fit == 0) continue;
      total += fit;
      const auto slot = static_cast<int32_t>(s);
      if (fit == replicas_) {
        if (whole < 0 || std::tie(gpus, cpus, memory) <
                             std::tie(free_gpus_[whole], free_cpus_[whole], free_memory_[whole])) {
          whole = slot;
        }
      } else if (whole < 0) {  // once one node holds all, partial nodes are moot
        candidates_.push_back({gpus - fit * need_.gpus, cpus - fit * need_.milli_cpus,
                               memory - fit * need_.memory_bytes, slot, static_cast<int32_t>(fit)});
      }
    }
    if (whole >= 0) {
      chosen_.push_back({whole, static_cast<int32_t>(replicas_)});
      return total;
    }
    if (total < replicas_) return total;

    // Every candidate holds >= 1 replica, so the answer uses at most
    // `replicas_` nodes, all among the top `replicas_` candidates.
    const auto begin = candidates_.begin();
    const auto top = begin + std::min<int64_t>(replicas_, std::ssize(candidates_));
    std::nth_element(begin, top, candidates_.end(), MoreReplicasThenBestFit);
    std::sort(begin, top, MoreReplicasThenBestFit);

    // Fill the biggest nodes whole until the next one would complete the job;
    // that last, partial chunk goes to its own best fit (a node that fits the
    // remainder snugly), picked among all the remaining candidates.
    int64_t placed = 0;
    size_t t = 0;
    while (placed + candidates_[t].fit < replicas_) {
      chosen_.push_back({candidates_[t].slot, candidates_[t].fit});
      placed += candidates_[t].fit;
      ++t;
    }
    const int64_t rest = replicas_ - placed;
    int32_t last = -1;
    for (size_t c = t; c < candidates_.size(); ++c) {
      if (candidates_[c].fit < rest) continue;
      const int32_t s = candidates_[c].slot;
      if (last < 0 || std::tie(free_gpus_[s], free_cpus_[s], free_memory_[s], s) <
                          std::tie(free_gpus_[last], free_cpus_[last], free_memory_[last], last)) {
        last = s;
      }
    }
    chosen_.push_back({last, static_cast<int32_t>(rest)});
    return total;
  }

  // Books chosen_ for the current job: replicas in chosen order (the node with
  // the most replicas first, so replica 0 sits with most of its peers).
  void Commit(JobDecision& decision) {
    decision.verdict = Verdict::kPlaced;
    decision.replicas.reserve(replicas_);
    const auto gpus_per_replica = static_cast<int32_t>(need_.gpus);
    for (const auto& [slot, count] : chosen_) {
      uint64_t& mask = free_mask_[slot];
      for (int32_t r = 0; r < count; ++r) {
        ReplicaPlacement& replica = decision.replicas.emplace_back();
        replica.node_index = node_index_[slot];
        replica.gpu_indices.reserve(gpus_per_replica);
        if (const GpuTopology* topology = topology_[slot]; topology != nullptr) {
          uint64_t set = GpuChooser(*topology, mask, gpus_per_replica).Choose();
          mask &= ~set;
          for (; set != 0; set &= set - 1) replica.gpu_indices.push_back(std::countr_zero(set));
        } else {
          for (int32_t g = 0; g < gpus_per_replica; ++g) {
            replica.gpu_indices.push_back(std::countr_zero(mask));
            mask &= mask - 1;
          }
        }
      }
      free_cpus_[slot] -= count * need_.milli_cpus;
      free_memory_[slot] -= count * need_.memory_bytes;
      free_gpus_[slot] -= count * gpus_per_replica;
    }
    if (need_.milli_cpus > 0 || need_.memory_bytes > 0 || need_.gpus > 0) bounds_stale_ = true;
  }

  void RefreshBounds() {
    max_free_ = {};
    for (size_t s = 0; s < node_index_.size(); ++s) {
      max_free_.milli_cpus = std::max(max_free_.milli_cpus, free_cpus_[s]);
      max_free_.memory_bytes = std::max(max_free_.memory_bytes, free_memory_[s]);
      max_free_.gpus = std::max<int64_t>(max_free_.gpus, free_gpus_[s]);
    }
    bounds_stale_ = false;
  }

  // Holds the current job's replicas on the ready nodes closest to fitting
  // it: each node in order of most free (GPUs, cpus, memory) takes as many
  // replicas as it holds when empty. What a held replica needs is taken from
  // the node's free capacity (down to zero), so later jobs in this call see
  // only the rest. Nothing is held when the ready nodes cannot hold every
  // replica even empty (the job waits for nodes, not for capacity); false
  // then.
  bool Hold(JobDecision& decision) {
    std::vector<int32_t> order(node_index_.size());
    for (size_t s = 0; s < order.size(); ++s) order[s] = static_cast<int32_t>(s);
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
      return std::tie(free_gpus_[b], free_cpus_[b], free_memory_[b], a) <
             std::tie(free_gpus_[a], free_cpus_[a], free_memory_[a], b);
    });
    std::vector<std::pair<int32_t, int64_t>> held;  // slot, replicas
    int64_t left = replicas_;
    for (int32_t s : order) {
      if (left == 0) break;
      const int32_t i = node_index_[s];
      const int64_t fit =
          std::min(left, FitCount(total_cpus_[i], total_memory_[i], total_gpus_[i]));
      if (fit == 0) continue;
      held.emplace_back(s, fit);
      left -= fit;
    }
    if (left > 0) return false;
    std::vector<std::string> names;
    for (const auto& [s, count] : held) {
      free_cpus_[s] = std::max<int64_t>(0, free_cpus_[s] - count * need_.milli_cpus);
      free_memory_[s] = std::max<int64_t>(0, free_memory_[s] - count * need_.memory_bytes);
      for (int64_t g = std::min(free_gpus_[s], count * need_.gpus); g > 0; --g) {
        free_mask_[s] &= free_mask_[s] - 1;
        --free_gpus_[s];
      }
      decision.held_nodes.push_back(node_index_[s]);
      names.push_back(cluster_.nodes[node_index_[s]].name);
    }
    std::sort(decision.held_nodes.begin(), decision.held_nodes.end());
    bounds_stale_ = true;
    absl::StrAppend(&decision.reason, "; holding ", absl::StrJoin(names, ", "),
                    " for it: jobs after it wait");
    return true;
  }

  // Per resource, against the largest node of that resource: the reason can
  // then name the one number the user has to change.
  std::string ExceedsLargestNode(const PendingJob& job) const {
    std::string out;
    auto add = [&](absl::string_view part) {
      absl::StrAppend(&out, out.empty() ? "" : "; ", part);
    };
    if (need_.gpus > largest_total_.gpus) {
      add(absl::StrCat("a replica needs ", need_.gpus, " GPUs (procsPerNode ", job.procs_per_node,
                       " x gpus ", job.gpus, ") but the largest node has ", largest_total_.gpus));
    }
    if (need_.milli_cpus > largest_total_.milli_cpus) {
      add(absl::StrCat("a replica needs ", FormatCpus(need_.milli_cpus), " cpus (procsPerNode ",
                       job.procs_per_node, " x cpus ", FormatCpus(job.milli_cpus),
                       ") but the largest node has ", FormatCpus(largest_total_.milli_cpus)));
    }
    if (need_.memory_bytes > largest_total_.memory_bytes) {
      add(absl::StrCat("a replica needs ", FormatMemory(need_.memory_bytes),
                       " memory (procsPerNode ", job.procs_per_node, " x memory ",
                       FormatMemory(job.memory_bytes), ") but the largest node has ",
                       FormatMemory(largest_total_.memory_bytes)));
    }
    return out;
  }

  // Could the job be placed if every node, ready or not, were empty?
  // Returns why not, or "" if it could.
  std::string NeverFitsWhenEmpty() const {
    int64_t holds = 0;
    for (size_t i = 0; i < total_cpus_.size(); ++i) {
      holds += FitCount(total_cpus_[i], total_memory_[i], total_gpus_[i]);
      if (holds >= replicas_) return {};
    }
    if (holds == 0) {
      return absl::StrCat("a replica needs ", FormatResources(need_),
                          " but no single node has all of it, even when empty");
    }
    return absl::StrCat("the job needs ", replicas_, " ", Plural(replicas_, "replica", "replicas"),
                        " of ", FormatResources(need_), " but the whole cluster holds at most ",
                        holds, " even when empty");
  }

  std::string NoRoomReason(int64_t fits_now) {
    std::string out =
        absl::StrCat("waiting for ", replicas_, " ", Plural(replicas_, "replica", "replicas"),
                     " of ", FormatResources(need_), "; ");
    if (node_index_.empty()) {
      absl::StrAppend(&out, "none of the ", total_cpus_.size(), " registered ",
                      Plural(std::ssize(total_cpus_), "node", "nodes"), " is ready");
      return out;
    }
    absl::StrAppend(&out, fits_now, " ", Plural(fits_now, "fits", "fit"), " now");
    if (fits_now > 0) return out;
    if (bounds_stale_) RefreshBounds();
    std::string short_of;
    auto add = [&](absl::string_view part) {
      absl::StrAppend(&short_of, short_of.empty() ? "" : ", ", part);
    };
    if (need_.milli_cpus > max_free_.milli_cpus)
      add(absl::StrCat("cpus ", FormatCpus(max_free_.milli_cpus)));
    if (need_.memory_bytes > max_free_.memory_bytes) {
      add(absl::StrCat("memory ", FormatMemory(max_free_.memory_bytes)));
    }
    if (need_.gpus > max_free_.gpus) add(absl::StrCat("gpus ", max_free_.gpus));
    if (short_of.empty()) {
      absl::StrAppend(&out, " (no ready node has all of it free at once)");
    } else {
      absl::StrAppend(&out, " (most free on one ready node: ", short_of, ")");
    }
    return out;
  }

  const ClusterSnapshot& cluster_;  // for node names in reasons
  int32_t holds_left_;              // PlacementOptions::max_holding_jobs not yet used
  // All nodes, ready or not: their empty capacity.
  std::vector<int64_t> total_cpus_;
  std::vector<int64_t> total_memory_;
  std::vector<int64_t> total_gpus_;
  Resources largest_total_;

  // Ready nodes only ("slots"), in node-index order, one array per resource so
  // the per-job scan reads just what it compares.
  std::vector<int32_t> node_index_;
  std::vector<int64_t> free_cpus_;
  std::vector<int64_t> free_memory_;
  std::vector<uint64_t> free_mask_;
  std::vector<int64_t> free_gpus_;  // popcount of free_mask_, kept in step
  // Null where GPUs go lowest index first (no usable topology, or scoring off).
  std::vector<const GpuTopology*> topology_;
  // Largest free amount of each resource on one ready node; an upper bound
  // while bounds_stale_, exact otherwise.
  Resources max_free_;
  bool bounds_stale_ = false;

  // The job being decided.
  int64_t replicas_ = 0;
  Resources need_;  // per replica
  Resources all_;   // need_ x replicas_, saturated

  // Scratch reused across jobs.
  std::vector<Candidate> candidates_;
  struct Chunk {
    int32_t slot;
    int32_t count;
  };
  std::vector<Chunk> chosen_;
};

// Groups GPUs by key (-1 and below: one "unknown" group), in order of each
// group's lowest GPU: scanning GPUs in index order meets each group first at
// its lowest GPU.
void GroupBy(std::span<const int32_t> key, std::vector<uint64_t>& groups,
             std::vector<uint8_t>& group_of) {
  std::vector<int32_t> group_key;
  group_of.resize(key.size());
  for (size_t i = 0; i < key.size(); ++i) {
    const int32_t k = std::max(key[i], -1);  // all unknowns alike
    auto it = std::find(group_key.begin(), group_key.end(), k);
    if (it == group_key.end()) {
      group_key.push_back(k);
      groups.push_back(0);
      it = group_key.end() - 1;
    }
    const auto group = static_cast<size_t>(it - group_key.begin());
    groups[group] |= Bit(static_cast<int>(i));
    group_of[i] = static_cast<uint8_t>(group);
  }
}

}  // namespace

std::shared_ptr<const GpuTopology> MakeGpuTopology(std::span<const int32_t> numa_node,
                                                   std::span<const int32_t> nvlinks,
                                                   std::span<const int32_t> pci_switch) {
  const size_t n = numa_node.size();
  if (n > static_cast<size_t>(kMaxGpusPerNode)) return nullptr;
  auto topology = std::make_shared<GpuTopology>();
  topology->peers.assign(n, 0);
  if (nvlinks.size() == n * n) {
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = 0; j < n; ++j) {
        if (i != j && (nvlinks[i * n + j] > 0 || nvlinks[j * n + i] > 0)) {
          topology->peers[i] |= Bit(static_cast<int>(j));
        }
      }
    }
  }
  GroupBy(numa_node, topology->numa_groups, topology->group_of);
  const std::vector<int32_t> unknown(n, -1);
  GroupBy(pci_switch.size() == n ? pci_switch : std::span<const int32_t>(unknown),
          topology->switch_groups, topology->switch_of);
  return topology;
}

PlacementResult Place(const ClusterSnapshot& cluster, std::span<const PendingJob> pending,
                      const PlacementOptions& options) {
  std::vector<int32_t> order(pending.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    const PendingJob& x = pending[a];
    const PendingJob& y = pending[b];
    if (x.priority != y.priority) return x.priority > y.priority;
    if (x.seq != y.seq) return x.seq < y.seq;
    return a < b;
  });

  PlacementResult result;
  result.decisions.resize(pending.size());
  Placer placer(cluster, options);
  for (int32_t i : order) placer.Decide(pending[i], result.decisions[i]);
  return result;
}

}  // namespace gangway::coordinator
