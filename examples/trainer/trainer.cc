// gangway-trainer: a real data-parallel trainer for gangway's examples and
// integration tests.
//
// Every rank trains the same logistic regression on its own shard of a
// synthetic data set, generated deterministically from --seed and the rank,
// and all-reduces (averages) the gradient every step, so after each step
// every rank holds the same weights. It prints Katib-style metric lines
// `step=N loss=X accuracy=Y` (the loss and accuracy of the whole data set,
// averaged over ranks) and finally
// `final_loss=X optimal_loss=Y weights_sha=HEX`, where optimal_loss is the
// loss of the weights that generated the labels (the best any model can
// expect) and weights_sha the SHA-256 of the final weights: identical on
// every rank when the all-reduce worked.
//
// Backends:
//   gloo  CPU; a Gloo context over gangway's rendezvous (GlooStore) and
//         Gloo's TCP transport on the address that routes to MASTER_ADDR.
//   nccl  one GPU per rank (the first of CUDA_VISIBLE_DEVICES, or
//         LOCAL_RANK's when several are visible); rank 0 creates the NCCL
//         unique id and the rendezvous hands it out. The model is tiny, so
//         the gradient is computed on the host and only the all-reduce runs
//         on the GPU. The CUDA driver API and NCCL are loaded with dlopen
//         (no CUDA runtime or toolkit is needed at run time), so one binary
//         runs on CPU-only nodes with --backend gloo; the backend is only
//         compiled when the CUDA and NCCL headers were found at build time.
//
// Environment: what gangway (or torchrun) gives a rank: RANK, WORLD_SIZE,
// LOCAL_RANK, MASTER_ADDR, GANGWAY_RDZV, GANGWAY_JOB, GANGWAY_ATTEMPT.
//
// Exit codes: 0 done, 1 a runtime failure (rendezvous, transport, GPU),
// 2 bad flags.
#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gloo/allreduce.h"
#include "gloo/math.h"
#include "gloo/rendezvous/context.h"
#include "gloo/transport/tcp/device.h"
#include "gpu/rendezvous/exchange.h"
#include "gpu/rendezvous/gloo_store.h"
#include "gpu/rendezvous/rendezvous_client.h"

#ifdef GANGWAY_TRAINER_NCCL
#include <cuda.h>
#include <dlfcn.h>
#include <nccl.h>

#include <cstring>
#endif

namespace gangway::trainer {
namespace {

struct Options {
  int steps = 200;
  double lr = 0.5;
  std::string backend = "gloo";
  int dim = 16;
  int samples = 2048;  // per rank
  uint64_t seed = 1;
  int log_every = 10;
  std::string gloo_host;  // empty: the address that routes to MASTER_ADDR
  int timeout_s = 300;
};

// ---------------------------------------------------------------------------
// Data and model

struct Shard {
  int dim = 0;
  std::vector<double> x;  // samples x dim, row-major
  std::vector<double> y;  // 0 or 1
  size_t size() const { return y.size(); }
};

double Sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

// log(1 + exp(z)) without overflow.
double Softplus(double z) { return z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z)); }

// The generating weights (dim + bias), the same on every rank: norm 4, so
// most labels are predictable but not all (the optimum is not zero loss).
std::vector<double> TrueWeights(int dim, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> normal;
  std::vector<double> w(dim + 1);
  double norm = 0;
  for (int i = 0; i < dim; ++i) {
    w[i] = normal(gen);
    norm += w[i] * w[i];
  }
  for (int i = 0; i < dim; ++i) w[i] *= 4.0 / std::sqrt(norm);
  w[dim] = 0.5;
  return w;
}

// Rank r's shard: its own stream, derived from the seed and the rank, so
// shards differ and every run of the job sees the same data.
Shard MakeShard(const Options& o, int rank, const std::vector<double>& truth) {
  std::seed_seq seq{static_cast<uint32_t>(o.seed), static_cast<uint32_t>(o.seed >> 32),
                    uint32_t{0x9e3779b9}, static_cast<uint32_t>(rank)};
  std::mt19937_64 gen(seq);
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> uniform;
  Shard s;
  s.dim = o.dim;
  s.x.resize(static_cast<size_t>(o.samples) * o.dim);
  s.y.resize(o.samples);
  for (int i = 0; i < o.samples; ++i) {
    double z = truth[o.dim];
    for (int j = 0; j < o.dim; ++j) {
      const double v = normal(gen);
      s.x[static_cast<size_t>(i) * o.dim + j] = v;
      z += v * truth[j];
    }
    s.y[i] = uniform(gen) < Sigmoid(z) ? 1.0 : 0.0;
  }
  return s;
}

// Mean gradient of the log loss over the shard into out[0..dim] (weights,
// bias), then the mean loss and the accuracy into out[dim+1], out[dim+2].
void LocalStats(const Shard& s, const std::vector<double>& w, std::span<double> out) {
  const int d = s.dim;
  std::fill(out.begin(), out.end(), 0.0);
  for (size_t i = 0; i < s.size(); ++i) {
    const double* xi = &s.x[i * d];
    double z = w[d];
    for (int j = 0; j < d; ++j) z += xi[j] * w[j];
    const double err = Sigmoid(z) - s.y[i];
    for (int j = 0; j < d; ++j) out[j] += err * xi[j];
    out[d] += err;
    out[d + 1] += Softplus(z) - s.y[i] * z;
    out[d + 2] += (z > 0) == (s.y[i] > 0.5) ? 1.0 : 0.0;
  }
  for (double& v : out) v /= static_cast<double>(s.size());
}

std::string Sha256Hex(std::span<const double> values) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(values.data(), values.size_bytes(), digest, &len, EVP_sha256(), nullptr);
  std::string hex;
  for (unsigned int i = 0; i < len; ++i)
    absl::StrAppend(&hex, absl::Hex(digest[i], absl::kZeroPad2));
  return hex;
}

// ---------------------------------------------------------------------------
// Collectives

class Collective {
 public:
  virtual ~Collective() = default;
  // Sums `data` over all ranks, in place; every rank gets the same bytes.
  virtual absl::Status AllReduceSum(std::span<double> data) = 0;
};

// The local address of the route to MASTER_ADDR: the interface the other
// ranks can reach this one on (a UDP connect sends nothing).
absl::StatusOr<std::string> RouteAddressTo(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), "9", &hints, &found); rc != 0) {
    return absl::UnavailableError(absl::StrCat("cannot resolve ", host, ": ", gai_strerror(rc)));
  }
  absl::Cleanup free_found = [found] { ::freeaddrinfo(found); };
  int fd = ::socket(found->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::UnavailableError("socket() failed");
  absl::Cleanup close_fd = [fd] { ::close(fd); };
  sockaddr_storage local{};
  socklen_t len = sizeof(local);
  if (::connect(fd, found->ai_addr, found->ai_addrlen) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) {
    return absl::UnavailableError(absl::StrCat("no route to ", host));
  }
  char text[INET6_ADDRSTRLEN] = {};
  const void* addr =
      local.ss_family == AF_INET
          ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&local)->sin_addr)
          : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&local)->sin6_addr);
  if (::inet_ntop(local.ss_family, addr, text, sizeof(text)) == nullptr) {
    return absl::UnavailableError("inet_ntop failed");
  }
  return std::string(text);
}

class GlooCollective final : public Collective {
 public:
  static absl::StatusOr<std::unique_ptr<Collective>> Create(const gpu::RendezvousClient& client,
                                                            const Options& o) {
    std::string host = o.gloo_host;
    if (host.empty()) {
      const char* master = std::getenv("MASTER_ADDR");
      absl::StatusOr<std::string> route =
          RouteAddressTo(master != nullptr && *master != '\0' ? master : "127.0.0.1");
      if (!route.ok()) return route.status();
      host = *route;
    }
    auto out = std::unique_ptr<GlooCollective>(new GlooCollective());
    // Gloo reports failures by throwing; they end here as statuses.
    try {
      gloo::transport::tcp::attr attr;
      attr.hostname = host;
      out->device_ = gloo::transport::tcp::CreateDevice(attr);
      auto context =
          std::make_shared<gloo::rendezvous::Context>(client.rank(), client.world_size());
      context->setTimeout(std::chrono::seconds(o.timeout_s));
      gpu::GlooStore store(client, "trainer/gloo/", std::chrono::seconds(o.timeout_s));
      context->connectFullMesh(store, out->device_);
      out->context_ = std::move(context);
    } catch (const std::exception& e) {
      return absl::UnavailableError(absl::StrCat("gloo setup on ", host, ": ", e.what()));
    }
    return std::unique_ptr<Collective>(std::move(out));
  }

  absl::Status AllReduceSum(std::span<double> data) override {
    try {
      gloo::AllreduceOptions opts(context_);
      opts.setOutput(data.data(), data.size());
      opts.setReduceFunction(
          static_cast<void (*)(void*, const void*, const void*, size_t)>(&gloo::sum<double>));
      opts.setTag(tag_++);
      gloo::allreduce(opts);
    } catch (const std::exception& e) {
      return absl::UnavailableError(absl::StrCat("gloo allreduce: ", e.what()));
    }
    return absl::OkStatus();
  }

 private:
  GlooCollective() = default;
  std::shared_ptr<gloo::transport::Device> device_;
  std::shared_ptr<gloo::Context> context_;
  uint32_t tag_ = 0;
};

#ifdef GANGWAY_TRAINER_NCCL
// Why the last dlopen failed, for the rank's log.
const char* DlError() {
  const char* err = ::dlerror();
  return err != nullptr ? err : "unknown error";
}

// The CUDA driver API and NCCL entry points the trainer uses, from dlopen.
// The driver API (libcuda.so.1, installed with the driver) rather than the
// runtime, so a GPU node needs no CUDA toolkit of a version its driver
// supports: NCCL carries its own runtime, which adopts the context made
// current here.
struct GpuApi {
  CUresult (*init)(unsigned int) = nullptr;
  CUresult (*device_get_count)(int*) = nullptr;
  CUresult (*device_get)(CUdevice*, int) = nullptr;
  CUresult (*primary_ctx_retain)(CUcontext*, CUdevice) = nullptr;
  CUresult (*primary_ctx_release)(CUdevice) = nullptr;
  CUresult (*ctx_set_current)(CUcontext) = nullptr;
  CUresult (*mem_alloc)(CUdeviceptr*, size_t) = nullptr;
  CUresult (*mem_free)(CUdeviceptr) = nullptr;
  CUresult (*memcpy_htod)(CUdeviceptr, const void*, size_t) = nullptr;
  CUresult (*memcpy_dtoh)(void*, CUdeviceptr, size_t) = nullptr;
  CUresult (*stream_create)(CUstream*, unsigned int) = nullptr;
  CUresult (*stream_synchronize)(CUstream) = nullptr;
  CUresult (*stream_destroy)(CUstream) = nullptr;
  CUresult (*error_string)(CUresult, const char**) = nullptr;
  ncclResult_t (*comm_init_rank)(ncclComm_t*, int, ncclUniqueId, int) = nullptr;
  ncclResult_t (*all_reduce)(const void*, void*, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t,
                             cudaStream_t) = nullptr;
  ncclResult_t (*comm_destroy)(ncclComm_t) = nullptr;
  const char* (*nccl_error)(ncclResult_t) = nullptr;

  absl::Status Load() {
    void* cuda = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (cuda == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot load libcuda.so.1 (the NVIDIA driver): ", DlError()));
    }
    void* nccl = ::dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (nccl == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat("cannot load libnccl.so.2: ", DlError()));
    }
    std::vector<std::string> missing;
    auto sym = [&missing](void* lib, const char* name, auto& fn) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(lib, name));
      if (fn == nullptr) missing.push_back(name);
    };
    // The versioned names are what cuda.h maps the plain ones to.
    sym(cuda, "cuInit", init);
    sym(cuda, "cuDeviceGetCount", device_get_count);
    sym(cuda, "cuDeviceGet", device_get);
    sym(cuda, "cuDevicePrimaryCtxRetain", primary_ctx_retain);
    sym(cuda, "cuDevicePrimaryCtxRelease_v2", primary_ctx_release);
    sym(cuda, "cuCtxSetCurrent", ctx_set_current);
    sym(cuda, "cuMemAlloc_v2", mem_alloc);
    sym(cuda, "cuMemFree_v2", mem_free);
    sym(cuda, "cuMemcpyHtoD_v2", memcpy_htod);
    sym(cuda, "cuMemcpyDtoH_v2", memcpy_dtoh);
    sym(cuda, "cuStreamCreate", stream_create);
    sym(cuda, "cuStreamSynchronize", stream_synchronize);
    sym(cuda, "cuStreamDestroy_v2", stream_destroy);
    sym(cuda, "cuGetErrorString", error_string);
    sym(nccl, "ncclCommInitRank", comm_init_rank);
    sym(nccl, "ncclAllReduce", all_reduce);
    sym(nccl, "ncclCommDestroy", comm_destroy);
    sym(nccl, "ncclGetErrorString", nccl_error);
    if (!missing.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("the CUDA driver or NCCL lacks ", absl::StrJoin(missing, ", ")));
    }
    return absl::OkStatus();
  }

  absl::Status Cuda(CUresult rc, const char* what) const {
    if (rc == CUDA_SUCCESS) return absl::OkStatus();
    const char* text = nullptr;
    if (error_string(rc, &text) != CUDA_SUCCESS || text == nullptr) {
      // The toolkit's stub libcuda cannot name its own error.
      text = rc == CUDA_ERROR_STUB_LIBRARY ? "a CUDA stub library, not a driver, was loaded"
                                           : "unknown CUDA error";
    }
    return absl::UnavailableError(absl::StrCat(what, ": ", text, " (CUDA error ", rc, ")"));
  }
  absl::Status Nccl(ncclResult_t rc, const char* what) const {
    if (rc == ncclSuccess) return absl::OkStatus();
    return absl::UnavailableError(absl::StrCat(what, ": ", nccl_error(rc)));
  }
};

class NcclCollective final : public Collective {
 public:
  static absl::StatusOr<std::unique_ptr<Collective>> Create(const gpu::RendezvousClient& client,
                                                            const Options& o, size_t elements) {
    auto out = std::unique_ptr<NcclCollective>(new NcclCollective());
    GpuApi& api = out->api_;
    if (absl::Status s = api.Load(); !s.ok()) return s;
    if (absl::Status s = api.Cuda(api.init(0), "cuInit"); !s.ok()) return s;
    int devices = 0;
    if (absl::Status s = api.Cuda(api.device_get_count(&devices), "cuDeviceGetCount"); !s.ok()) {
      return s;
    }
    if (devices < 1) return absl::FailedPreconditionError("no GPU visible to this rank");
    const char* local = std::getenv("LOCAL_RANK");
    const int ordinal = devices == 1 || local == nullptr ? 0 : std::atoi(local) % devices;
    if (absl::Status s = api.Cuda(api.device_get(&out->device_, ordinal), "cuDeviceGet"); !s.ok()) {
      return s;
    }
    if (absl::Status s = api.Cuda(api.primary_ctx_retain(&out->context_, out->device_),
                                  "cuDevicePrimaryCtxRetain");
        !s.ok()) {
      return s;
    }
    if (absl::Status s = api.Cuda(api.ctx_set_current(out->context_), "cuCtxSetCurrent"); !s.ok()) {
      return s;
    }

    absl::StatusOr<gpu::NcclUniqueIdBytes> id =
        gpu::ExchangeNcclUniqueId(client, std::chrono::seconds(o.timeout_s));
    if (!id.ok()) return id.status();
    ncclUniqueId nccl_id;
    static_assert(sizeof(nccl_id) == gpu::kNcclUniqueIdBytes);
    std::memcpy(&nccl_id, id->data(), sizeof(nccl_id));

    if (absl::Status s = api.Cuda(api.stream_create(&out->stream_, 0), "cuStreamCreate"); !s.ok()) {
      return s;
    }
    if (absl::Status s =
            api.Cuda(api.mem_alloc(&out->buffer_, elements * sizeof(double)), "cuMemAlloc");
        !s.ok()) {
      return s;
    }
    out->elements_ = elements;
    if (absl::Status s =
            api.Nccl(api.comm_init_rank(&out->comm_, client.world_size(), nccl_id, client.rank()),
                     "ncclCommInitRank");
        !s.ok()) {
      return s;
    }
    return std::unique_ptr<Collective>(std::move(out));
  }

  ~NcclCollective() override {
    if (comm_ != nullptr) api_.comm_destroy(comm_);
    if (buffer_ != 0) api_.mem_free(buffer_);
    if (stream_ != nullptr) api_.stream_destroy(stream_);
    if (context_ != nullptr) api_.primary_ctx_release(device_);
  }

  absl::Status AllReduceSum(std::span<double> data) override {
    if (data.size() > elements_) return absl::InternalError("all-reduce larger than its buffer");
    const size_t bytes = data.size_bytes();
    if (absl::Status s = api_.Cuda(api_.memcpy_htod(buffer_, data.data(), bytes), "cuMemcpyHtoD");
        !s.ok()) {
      return s;
    }
    void* device_buffer = reinterpret_cast<void*>(static_cast<uintptr_t>(buffer_));
    if (absl::Status s = api_.Nccl(api_.all_reduce(device_buffer, device_buffer, data.size(),
                                                   ncclDouble, ncclSum, comm_, stream_),
                                   "ncclAllReduce");
        !s.ok()) {
      return s;
    }
    if (absl::Status s = api_.Cuda(api_.stream_synchronize(stream_), "cuStreamSynchronize");
        !s.ok()) {
      return s;
    }
    return api_.Cuda(api_.memcpy_dtoh(data.data(), buffer_, bytes), "cuMemcpyDtoH");
  }

 private:
  NcclCollective() = default;
  GpuApi api_;
  CUdevice device_ = 0;
  CUcontext context_ = nullptr;  // the device's primary context, retained
  ncclComm_t comm_ = nullptr;
  CUstream stream_ = nullptr;
  CUdeviceptr buffer_ = 0;  // device memory, freed in the destructor
  size_t elements_ = 0;
};
#endif  // GANGWAY_TRAINER_NCCL

// ---------------------------------------------------------------------------

absl::Status Train(const Options& o) {
  absl::StatusOr<std::unique_ptr<gpu::RendezvousClient>> client = gpu::RendezvousClient::FromEnv();
  if (!client.ok()) return client.status();
  const gpu::RendezvousClient& rdzv = **client;
  const int rank = rdzv.rank();
  const int world = rdzv.world_size();
  const size_t stats_size = static_cast<size_t>(o.dim) + 3;

  absl::StatusOr<std::unique_ptr<Collective>> collective;
  if (o.backend == "gloo") {
    collective = GlooCollective::Create(rdzv, o);
  } else {
#ifdef GANGWAY_TRAINER_NCCL
    collective = NcclCollective::Create(rdzv, o, stats_size);
#else
    collective = absl::FailedPreconditionError(
        "this gangway-trainer was built without CUDA and NCCL headers; use --backend gloo");
#endif
  }
  if (!collective.ok()) return collective.status();
  std::printf("rank=%d world_size=%d backend=%s dim=%d samples_per_rank=%d\n", rank, world,
              o.backend.c_str(), o.dim, o.samples);

  const std::vector<double> truth = TrueWeights(o.dim, o.seed);
  const Shard shard = MakeShard(o, rank, truth);
  std::vector<double> w(o.dim + 1, 0.0);
  std::vector<double> stats(stats_size);
  double loss = 0;
  for (int step = 0; step <= o.steps; ++step) {
    LocalStats(shard, w, stats);
    if (absl::Status s = (*collective)->AllReduceSum(stats); !s.ok()) return s;
    for (double& v : stats) v /= world;  // equal shards: the mean of means
    loss = stats[o.dim + 1];
    if (!std::isfinite(loss))
      return absl::InternalError(absl::StrCat("loss diverged at step ", step));
    if (step % o.log_every == 0 || step == o.steps) {
      std::printf("step=%d loss=%.6f accuracy=%.4f\n", step, loss, stats[o.dim + 2]);
      std::fflush(stdout);
    }
    if (step == o.steps) break;  // the last pass only measures
    for (int j = 0; j <= o.dim; ++j) w[j] -= o.lr * stats[j];
  }

  // The loss of the generating weights over the same data: what training
  // should approach.
  LocalStats(shard, truth, stats);
  if (absl::Status s = (*collective)->AllReduceSum(stats); !s.ok()) return s;
  const double optimal = stats[o.dim + 1] / world;
  std::printf("final_loss=%.6f optimal_loss=%.6f weights_sha=%s\n", loss, optimal,
              Sha256Hex(w).c_str());
  std::fflush(stdout);
  // Nobody tears down its transport while a peer may still read from it.
  return rdzv.Barrier("trainer/done", std::chrono::seconds(o.timeout_s));
}

}  // namespace
}  // namespace gangway::trainer

int main(int argc, char** argv) {
  gangway::trainer::Options o;
  CLI::App app{"gangway-trainer: data-parallel logistic regression (Gloo on CPU, NCCL on GPU)"};
  app.add_option("--steps", o.steps, "gradient steps")->check(CLI::Range(0, 1'000'000));
  app.add_option("--lr", o.lr, "learning rate")->check(CLI::PositiveNumber);
  // Tests read this help to learn whether the NCCL backend was compiled in.
#ifdef GANGWAY_TRAINER_NCCL
  constexpr const char* kBackendHelp = "gloo (CPU) or nccl (one GPU per rank)";
#else
  constexpr const char* kBackendHelp =
      "gloo (CPU); nccl is not compiled into this binary (no CUDA/NCCL headers at build time)";
#endif
  app.add_option("--backend", o.backend, kBackendHelp)->check(CLI::IsMember({"gloo", "nccl"}));
  app.add_option("--dim", o.dim, "features")->check(CLI::Range(1, 1'000'000));
  app.add_option("--samples", o.samples, "samples per rank")->check(CLI::Range(1, 10'000'000));
  app.add_option("--seed", o.seed, "data seed (the same on every rank)");
  app.add_option("--log-every", o.log_every, "steps between metric lines")
      ->check(CLI::Range(1, 1'000'000));
  app.add_option("--gloo-host", o.gloo_host,
                 "address Gloo listens on (default: the one that routes to MASTER_ADDR)");
  app.add_option("--timeout", o.timeout_s, "seconds to wait for peers and collectives")
      ->check(CLI::Range(1, 86'400));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help is a ParseError too (exit code 0); every real error is 2.
    return app.exit(e) == 0 ? 0 : 2;
  }
  absl::Status s = gangway::trainer::Train(o);
  if (!s.ok()) {
    std::fprintf(stderr, "gangway-trainer: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
